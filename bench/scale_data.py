"""The scale bench's data, generated straight into the database (``LOAD DATA LOCAL INFILE``).

``Sizes`` says how much; ``load`` writes tab-separated files of every row and loads them, in
the services' own tables (services/*/models.py). The shape, per application ``i``:

* ``sc-{i:05d}``, one member: user ``i % users`` as owner (so with 10,000 apps and 200 users
  every user is a member of 50 apps, spread over the whole id range);
* services ``web`` and ``worker``; ``versions / apps`` versions, alternating between them;
* ``records / apps`` deploy records, interleaved between apps by id as they happen (record
  ``k`` of app ``i`` has id ``k * apps + i + 1``), each with a target on ``test`` and every other
  one also on ``prod``; the newest record of each version succeeded, older ones superseded;
* ``log_lines / records`` log lines per record, in record order.

Application 0 (``FOCUS``) looks the same at every size: the bench reads it in both phases.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

FOCUS = "sc-00000"
START = datetime(2026, 1, 1)
SERVICES = ("web", "worker")
# The generated tables, children first (TRUNCATE with foreign key checks off).
TABLES = ("deploy_log_lines", "deploy_targets", "deploy_records", "deploy_versions", "deploy_services",
          "org_members", "org_applications")


@dataclass(frozen=True)
class Sizes:
    apps: int
    users: int
    versions: int
    records: int
    log_lines: int

    @classmethod
    def full(cls, fraction: float = 1.0) -> "Sizes":
        """10,000 apps, 200 users, 50,000 versions, 200,000 records, 5,000,000 lines (× fraction;
        users shrink with apps so that each stays a member of 50)."""
        apps = max(100, int(10_000 * fraction))
        return cls(apps=apps, users=max(1, apps // 50), versions=apps * 5, records=apps * 20,
                   log_lines=apps * 500)

    @classmethod
    def baseline(cls) -> "Sizes":
        """The nearly empty database of the same-run baseline: the focus app's 50 apps and rows."""
        return cls(apps=50, users=1, versions=250, records=1000, log_lines=25_000)

    def describe(self) -> str:
        return (f"{self.apps:,} apps, {self.users:,} users, {self.versions:,} versions, "
                f"{self.records:,} records, {self.log_lines:,} log lines")


def _t(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S.%f")


def _config(service: str, j: int) -> str:
    from services.deploy.domain.config import check_version

    config = check_version({"name": f"v{j}", "image": f"registry.example/sc/{service}:1.{j}", "port": 8080,
                            "replicas": 1})
    config.pop("name")
    return json.dumps(config, separators=(",", ":"))


def user_rows(users: int):
    from services.auth.domain.usernames import key

    now = _t(START)
    for u in range(users):
        name = f"sc-user-{u:03d}"
        yield (name, key(name), f"Scale user {u}", f"{name}@example.test", 0, now, now)


def write_files(sizes: Sizes, user_ids: list[int], out: str) -> dict[str, str]:
    """One tab-separated file per table; {table: path}."""
    apps, per_app_versions = sizes.apps, sizes.versions // sizes.apps
    per_app_records, per_record_lines = sizes.records // sizes.apps, sizes.log_lines // sizes.records
    paths = {t: os.path.join(out, t + ".tsv") for t in TABLES}
    configs = {(s, j): _config(s, j) for j in range(per_app_versions) for s in SERVICES}
    now = _t(START)
    with open(paths["org_applications"], "w") as fa, open(paths["org_members"], "w") as fm, \
            open(paths["deploy_services"], "w") as fs, open(paths["deploy_versions"], "w") as fv:
        for i in range(apps):
            app = f"sc-{i:05d}"
            fa.write(f"{i + 1}\t{app}\tScale app {i}\t\tbench\t{now}\t{now}\n")
            owner = i % sizes.users
            fm.write(f"{i + 1}\t{user_ids[owner]}\tsc-user-{owner:03d}\towner\t{now}\n")
            for s, service in enumerate(SERVICES):
                fs.write(f"{i * 2 + s + 1}\t{app}\t{service}\t\tbench\t{now}\n")
            for j in range(per_app_versions):
                s = j % 2
                fv.write(f"{i * 2 + s + 1}\t{app}\t{SERVICES[s]}\tv{j}\t{configs[(SERVICES[s], j)]}\tbench\t{now}\t{now}\n")
    replicas = json.dumps({"desired": 1, "updated": 1, "ready": 1, "available": 1, "unavailable": 0})
    with open(paths["deploy_records"], "w") as fr, open(paths["deploy_targets"], "w") as ft, \
            open(paths["deploy_log_lines"], "w") as fl:
        for k in range(per_app_records):
            j = k % per_app_versions
            service = SERVICES[j % 2]
            final = "succeeded" if k >= per_app_records - per_app_versions else "superseded"
            image = f"registry.example/sc/{service}:1.{j}"
            manifest = json.dumps([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
                "name": f"{service}-v{j}", "labels": {"mae.io/service": service, "mae.io/version": f"v{j}"}},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [
                    {"name": service, "image": image, "ports": [{"containerPort": 8080}]}]}}}}],
                separators=(",", ":"))
            for i in range(apps):
                rid = k * apps + i + 1
                app = f"sc-{i:05d}"
                created = START + timedelta(seconds=rid)
                done = _t(created + timedelta(seconds=3))
                fr.write(f"{rid}\t{app}\tdeploy\tversion\t{service}\tv{j}\t{final}\tsc-user-{i % sizes.users:03d}"
                         f"\t{_t(created)}\t{done}\n")
                for cluster in (("test", "prod") if k % 2 else ("test",)):
                    ft.write(f"{rid}\t{cluster}\t{cluster}\t{app}\t{service}-v{j}\tapply\t1\t{image}\t{manifest}"
                             f"\t{final}\t1\t{replicas}\t600\t{done}\t{done}\n")
                for n in range(per_record_lines):
                    fl.write(f"sc-{rid}-{n}\t{rid}\t{_t(created + timedelta(milliseconds=n * 100))}\ttest\tinfo"
                             f"\t{service}-v{j}: step {n} of the rollout, 1 of 1 replicas updated\n")
    return paths


COLUMNS = {
    "org_applications": "(id, name, display_name, description, created_by, created_at, updated_at)",
    "org_members": "(app_id, user_id, username, role, created_at)",
    "deploy_services": "(id, app, name, description, created_by, created_at)",
    "deploy_versions": "(service_id, app, service, name, config, created_by, created_at, updated_at)",
    "deploy_records": "(id, app, action, subject, service, version, status, created_by, created_at, finished_at)",
    "deploy_targets": "(record_id, cluster, env, namespace, object_name, action, has_deployment, image, manifests,"
                      " status, attempt, replicas, progress_deadline_seconds, finished_at, updated_at)",
    "deploy_log_lines": "(line_id, record_id, time, cluster, level, line)",
}


def _connect(db_url: str, database: str | None = None):
    import pymysql
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    return pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
                           database=database or url.database, charset="utf8mb4", local_infile=True,
                           autocommit=True)


def _name(db_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(db_url).database


def shadow(db_url: str, alt: str) -> None:
    """Database ``alt`` with empty copies of the generated tables (indexes and foreign keys alike)."""
    conn = _connect(db_url)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{alt}`")
        cur.execute(f"CREATE DATABASE `{alt}`")
        for table in reversed(TABLES):  # parents first
            cur.execute(f"SHOW CREATE TABLE {table}")
            ddl = cur.fetchone()[1]
            cur.execute(f"USE `{alt}`")
            cur.execute(ddl)
            cur.execute(f"USE `{_name(db_url)}`")
    conn.close()


def swap(db_url: str, alt: str) -> None:
    """Exchange the generated tables of the services' database and ``alt``, in one atomic RENAME
    (the services' open connections see the other set from their next query)."""
    conn = _connect(db_url)
    main = _name(db_url)
    moves = []
    for table in TABLES:
        moves += [f"`{main}`.{table} TO `{alt}`.swap_{table}", f"`{alt}`.{table} TO `{main}`.{table}",
                  f"`{alt}`.swap_{table} TO `{alt}`.{table}"]
    with conn.cursor() as cur:
        cur.execute("RENAME TABLE " + ", ".join(moves))
    conn.close()


def drop(db_url: str, alt: str) -> None:
    conn = _connect(db_url)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{alt}`")
    conn.close()


def ensure_users(db_url: str, users: int) -> list[int]:
    """The generated users (created once, kept across phases): their ids in order."""
    conn = _connect(db_url)
    with conn.cursor() as cur:
        cur.executemany("INSERT IGNORE INTO auth_users (username, username_key, display_name, email, is_admin,"
                        " created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s)", list(user_rows(users)))
        cur.execute("SELECT id FROM auth_users WHERE username LIKE 'sc-user-%' ORDER BY username")
        ids = [r[0] for r in cur.fetchall()]
    conn.close()
    return ids[:users]


def load(db_url: str, sizes: Sizes, user_ids: list[int], database: str | None = None) -> dict[str, float]:
    """Empty the generated tables (of ``database``, default the URL's) and load ``sizes`` of rows;
    seconds per step (and ``total``)."""
    steps = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mae-bench-scale-") as out:
        paths = write_files(sizes, user_ids, out)
        steps["generate files"] = time.perf_counter() - started
        conn = _connect(db_url, database)
        with conn.cursor() as cur:
            cur.execute("SET foreign_key_checks = 0, unique_checks = 0")
            for table in TABLES:
                cur.execute(f"TRUNCATE TABLE {table}")
            for table in reversed(TABLES):
                t = time.perf_counter()
                cur.execute(f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
                            f"FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' {COLUMNS[table]}",
                            (paths[table],))
                steps[f"load {table}"] = time.perf_counter() - t
            t = time.perf_counter()
            for table in TABLES:
                cur.execute(f"ANALYZE TABLE {table}")
                cur.fetchall()
            steps["analyze"] = time.perf_counter() - t
        conn.close()
    steps["total"] = time.perf_counter() - started
    return steps


def counts(db_url: str) -> dict[str, int]:
    conn = _connect(db_url)
    with conn.cursor() as cur:
        found = {}
        for table in TABLES + ("auth_users",):
            cur.execute(f"SELECT COUNT(*) FROM {table}")
            found[table] = cur.fetchone()[0]
    conn.close()
    return found
