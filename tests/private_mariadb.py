"""Databases of a test's own: a migrated database on the run's server (``own_database``), and a
MariaDB server of its own (``private_mariadb``: ``mariadbd`` on a free port, a fresh data
directory) for what must not be done to the shared one, such as filling its ``max_connections``."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager

import pymysql

from tests.conftest import free_port


@contextmanager
def private_mariadb(base_dir, max_connections: int = 10, max_user_connections: int = 0):
    """Yields the port of a running server (root without a password, 127.0.0.1); stopped and
    removed afterwards. A server started with ``max_user_connections`` 0 cannot have it set at
    run time (error 1290); start it with a (high) limit to lower it later with SET GLOBAL."""
    data = os.path.join(str(base_dir), "data")
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--skip-test-db",
                    "--auth-root-authentication-method=normal"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    port = free_port()
    log = open(os.path.join(str(base_dir), "mariadbd.log"), "w")
    proc = subprocess.Popen(
        ["mariadbd", "--no-defaults", "--user=root", f"--datadir={data}", f"--port={port}",
         "--bind-address=127.0.0.1", f"--socket={os.path.join(str(base_dir), 'sock')}",
         f"--max-connections={max_connections}", f"--max-user-connections={max_user_connections}",
         "--skip-name-resolve", "--innodb-buffer-pool-size=16M",
         f"--pid-file={os.path.join(str(base_dir), 'pid')}"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2).close()
                break
            except pymysql.err.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"mariadbd did not start; see {log.name}")
                time.sleep(0.2)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def sql(port: int, *statements: str, user: str = "root", password: str = "") -> list:
    """Run ``statements`` on the private server; the last one's rows."""
    conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


@contextmanager
def own_database(infra, suffix: str):
    """A migrated database of the run's server for one module alone (a chore that works on whole
    tables, a plan that needs rows of its own): yields (url, engine); dropped afterwards."""
    from sqlalchemy import create_engine, text

    from shared.migrate import upgrade

    database = f"{infra.database}_{suffix}"
    url = infra.db_url.replace(f"/{infra.database}?", f"/{database}?")
    upgrade(url)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        engine.dispose()
