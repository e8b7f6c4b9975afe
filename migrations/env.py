"""Alembic environment: one history for the tables of every service.

Each service declares its own metadata in ``services/<name>/models.py``; they
share one database (each service owns its tables) and so one history here.
The URL comes from the same config file the services read.
"""
from __future__ import annotations

import importlib

from alembic import context
from sqlalchemy import create_engine

from shared.config import load_config

SERVICES = ("auth", "org", "deploy", "cluster", "server", "notify")

target_metadata = [importlib.import_module(f"services.{name}.models").Base.metadata
                   for name in SERVICES] + [importlib.import_module("shared.outbox").OutboxBase.metadata]


def db_url() -> str:
    return context.config.get_main_option("sqlalchemy.url") or load_config()["DB_URL"]


def run_migrations_offline() -> None:
    context.configure(url=db_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(db_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
