"""Create the database if it is missing and bring every service's tables to the newest revision.

Services may add migrations on their own branches (down_revision "0001"), so
this upgrades to every head.

Used by ``make migrate``, ``make up``, the Kubernetes migration Job and the tests.

``python -m shared.migrate --wait [SECONDS]`` changes nothing: it waits until the database
holds this image's schema (every head of its migrations, or a newer one) — the init
container of every service pod, so a new version never serves on an old schema while
the migration Job runs.
"""
from __future__ import annotations

import sys
import time

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from shared.config import ROOT, load_config


def ensure_database(url: str) -> None:
    parsed = make_url(url)
    server = create_engine(parsed.set(database=""))
    with server.connect() as conn:
        conn.execute(text(
            f"CREATE DATABASE IF NOT EXISTS `{parsed.database}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    server.dispose()


def upgrade(url: str, revision: str = "heads") -> None:
    ensure_database(url)
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def _script() -> ScriptDirectory:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(cfg)


def schema_state(url: str) -> tuple[bool, str]:
    """(ready, what the database holds compared with this image's migrations)."""
    script = _script()
    wanted = set(script.get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    known = {rev.revision for rev in script.walk_revisions()}
    newer = current - known  # a newer image migrated already: its schema is a superset
    missing = wanted - current
    if newer or not missing:
        return True, f"schema at {sorted(current)}"
    return False, f"waiting for {sorted(missing)} (database at {sorted(current) or 'nothing'})"


def wait(url: str, timeout: float, interval: float = 3.0, clock=time.monotonic, sleep=time.sleep) -> bool:
    deadline = clock() + timeout
    while True:
        try:
            ready, said = schema_state(url)
        except Exception as exc:  # the database not up yet: wait for it like for the schema
            ready, said = False, f"database unreachable ({type(exc).__name__}: {exc})"[:300]
        print(said, flush=True)
        if ready:
            return True
        if clock() >= deadline:
            print(f"gave up after {timeout:g} s: run the migration Job (k8s/base/migrate-job.yaml)", flush=True)
            return False
        sleep(interval)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    url = load_config()["DB_URL"]
    if argv[:1] == ["--wait"]:
        return 0 if wait(url, float(argv[1]) if len(argv) > 1 else 600) else 1
    upgrade(url)
    print(f"migrated {make_url(url).render_as_string(hide_password=True)} to heads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
