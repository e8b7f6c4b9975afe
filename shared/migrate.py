"""Create the database if it is missing and bring every service's tables to the newest revision.

Services may add migrations on their own branches (down_revision "0001"), so
this upgrades to every head.

Used by ``make migrate``, ``make up``, the Kubernetes migration Job and the tests.
"""
from __future__ import annotations

import sys

from alembic import command
from alembic.config import Config
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


def main() -> int:
    url = load_config()["DB_URL"]
    upgrade(url)
    print(f"migrated {make_url(url).render_as_string(hide_password=True)} to heads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
