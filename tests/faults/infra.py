"""Private broker, cache and database servers for the fault suite, which it may restart.

The machine's RabbitMQ, Redis and MariaDB are shared (other test runs, other
people): the fault suite never touches them. Instead it starts its own

* RabbitMQ node (``rabbitmq-server -detached`` with its own node name, AMQP and
  distribution ports, mnesia and log directories); a restart is a real one:
  ``rabbitmqctl stop`` (the Erlang VM exits, every connection drops) and a new
  ``rabbitmq-server``; durable queues and their messages survive, as they do
  in production;
* ``redis-server`` on its own port without persistence; a restart is
  ``SHUTDOWN NOSAVE`` and a new process, so every key (locks, caches, rate
  limits) is gone afterwards, the harsher case;
* ``mariadbd`` on a data directory of its own (``mariadb-install-db``); an
  outage is a clean stop, a pause, and a start on the same data.

Each is a plain process of this test run, stopped at the end by its own pid
(or node name), never by a name pattern. The same servers in production's shape — a
3-node RabbitMQ cluster, a Redis primary with a replica and three sentinels — are
rabbit_cluster.py and sentinel.py.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

# The sandboxes and operators of the fault stack (as tests/e2e's, snapshots every second).
SANDBOX_OPTS = {"ready_delay": 0.2, "backoff": 0.3, "snapshot_interval": 1}
OPERATOR_OPTS = {"batch_seconds": 0.2, "heartbeat_seconds": 2, "backoff_cap": 2}

# rabbitmqctl's own distribution ports (35672-35682) and the machine broker's
# (25672): a private node must not pick them.
_RESERVED = set(range(35672, 35683)) | {25672, 5672, 6379, 3306, 4369}


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _RESERVED and port + 1 not in _RESERVED:
            return port


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout:g} s")


class PrivateRedis:
    def __init__(self, base: Path):
        self.dir = base / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "no"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        _wait(lambda: _listening(self.port), 20, f"redis on {self.port} did not listen")

    def stop(self) -> None:
        if self.proc is None:
            return
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
                       capture_output=True, timeout=20)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class PrivateRabbit:
    def __init__(self, base: Path, node: str | None = None):
        # The node runs as the rabbitmq user: a directory of its own it can reach
        # (pytest's tmp dirs are private to root). Nodes of one machine share the rabbitmq
        # user's Erlang cookie, so the nodes of a cluster (rabbit_cluster.py) reach each other.
        self.dir = Path(tempfile.mkdtemp(prefix="mae-faults-rabbitmq-", dir="/tmp"))
        self.dir.chmod(0o755)
        self.port = free_port()
        self.dist_port = free_port()
        self.node = node or f"mae-faults-{os.getpid()}@localhost"
        self.url = f"pyamqp://guest:guest@127.0.0.1:{self.port}/"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            # a 2-core machine shared with other tests: do not block publishers for disk
            "disk_free_limit.absolute = 50MB\n")
        if os.geteuid() == 0:
            for path in (self.dir, *self.dir.iterdir()):
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.env = {**os.environ, "RABBITMQ_NODENAME": self.node,
                    "RABBITMQ_DIST_PORT": str(self.dist_port),
                    "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
                    "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                    "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                    "RABBITMQ_PID_FILE": str(self.dir / "pid")}
        self.running = False

    def _ctl(self, *args, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["rabbitmqctl", "-q", "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        (self.dir / "pid").unlink(missing_ok=True)
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True,
                       capture_output=True, timeout=60)
        self.running = True
        waited = self._ctl("wait", str(self.dir / "pid"), "--timeout", "120", timeout=150)
        if waited.returncode != 0:
            raise RuntimeError(f"private RabbitMQ did not start: {waited.stderr[-500:]}")
        _wait(lambda: _listening(self.port), 60, f"RabbitMQ on {self.port} did not listen")

    def stop(self) -> None:
        if not self.running:
            return
        self._ctl("stop", str(self.dir / "pid"), timeout=120)
        self.running = False

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM: no goodbye to its peers or its clients."""
        pid = int((self.dir / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not _listening(self.port), 30, f"RabbitMQ on {self.port} still listens")
        self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def consumers(self) -> dict[str, int]:
        """{queue: consumers} of the node's default vhost."""
        out = self._ctl("list_queues", "name", "consumers", "--no-table-headers", timeout=60)
        found = {}
        for line in out.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                found[parts[0]] = int(parts[1])
        return found

    def queue_state(self) -> str:
        """The node's queues (ready, unacked, consumers) and channels (consumers, unacked,
        prefetch), as rabbitmqctl prints them: where undelivered messages wait."""
        queues = self._ctl("list_queues", "name", "messages_ready", "messages_unacknowledged", "consumers",
                           timeout=60).stdout
        channels = self._ctl("list_channels", "name", "consumer_count", "messages_unacknowledged",
                             "prefetch_count", timeout=60).stdout
        return f"queues (name ready unacked consumers):\n{queues}\nchannels:\n{channels}"

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateMariaDB:
    def __init__(self, base: Path):
        self.dir = base / "mariadb"
        self.data = self.dir / "data"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.database = "mae_faults"
        self.url = f"mysql+pymysql://root:@127.0.0.1:{self.port}/{self.database}?charset=utf8mb4"
        out = subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {out.stderr[-500:]}")

    def start(self) -> None:
        log = open(self.dir / "mariadbd.out", "ab")
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.data}", "--user=root",
             f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.dir / 'sock'}",
             f"--pid-file={self.dir / 'pid'}", "--skip-log-bin", "--innodb-buffer-pool-size=128M",
             "--max-connections=500", "--skip-name-resolve", f"--log-error={self.dir / 'error.log'}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        _wait(self._answers, 60, f"MariaDB on {self.port} did not answer")

    def _answers(self) -> bool:
        out = subprocess.run(["mariadb", "-h127.0.0.1", f"-P{self.port}", "-uroot", "-e", "SELECT 1"],
                             capture_output=True, timeout=10)
        return out.returncode == 0

    def create_database(self) -> None:
        subprocess.run(["mariadb", "-h127.0.0.1", f"-P{self.port}", "-uroot", "-e",
                        f"CREATE DATABASE IF NOT EXISTS `{self.database}` CHARACTER SET utf8mb4"],
                       check=True, capture_output=True, timeout=30)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@contextmanager
def servers_running(**servers):
    """Start ``servers`` in order (the last, ``mariadb``, gets MAE's schema), stop them in
    reverse at the end; a module's fault stack runs on them (cluster_wave.py brings its own)."""
    started = []
    try:
        for server in servers.values():
            started.append(server)
            server.start()
        mariadb = servers["mariadb"]
        mariadb.create_database()
        from shared.migrate import upgrade

        upgrade(mariadb.url)
        yield servers
    finally:
        for server in reversed(started):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {type(server).__name__}: {exc}")
        for server in servers.values():
            getattr(server, "remove", lambda: None)()
