"""A database of its own, brought to an older revision, for a test of what a later
migration does to rows an older version wrote: ``with database_at(infra, "0017", tag) as
(url, engine): ...``; dropped afterwards."""
from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import create_engine, text

from shared.migrate import upgrade


@contextmanager
def database_at(infra, revision: str, tag: str):
    name = f"{infra.database}_{tag}"[:64]
    url = infra.db_url.replace(f"/{infra.database}?", f"/{name}?")
    server = create_engine("mysql+pymysql://root:@127.0.0.1:3306/")

    def drop():
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))

    drop()
    upgrade(url, revision)
    engine = create_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        drop()
        server.dispose()
