"""Retention: rows of tables that grow without bound, trimmed after ``RETENTION_DAYS``.

Each service lists its rules (``services/<svc>/retention.py``): which ``RETENTION_DAYS``
key, which table, and how one batch is trimmed (at most ``RETENTION_BATCH`` rows, one
short transaction of its own). A timer (``RetentionEntrypoints.trim_old_rows``) runs
the rules every ``RETENTION_SECONDS``; only the replica holding the service's
``retention`` lease (``shared.db_lease``, a row in the service's own database, so it
works while Redis is away) trims, pausing ``RETENTION_PAUSE_SECONDS`` between batches
so the database keeps room for the requests people make. "Now" is the injected clock's
(``shared.clock``), so tests run the rules at any date.

A key set to 0 (or missing) keeps that table's rows forever.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.timer import timer
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from shared.clock import Clock
from shared.db import retryable
from shared.db_lease import Lease, new_holder

log = logging.getLogger(__name__)

# How often each replica tries (one of them trims); read at import, like every timer's interval.
RETENTION_SECONDS = float(os.environ.get("RETENTION_SECONDS", "3600"))
LEASE = "retention"


@dataclass(frozen=True)
class Rule:
    """``trim(conn, cutoff, batch, state) -> rows``: one batch of rows older than ``cutoff``
    removed (or made smaller); ``state`` is the rule's own dict for one run (``days``,
    ``now``, and whatever the rule keeps there, e.g. a cursor)."""

    key: str        # the RETENTION_DAYS key
    name: str       # what the run reports (table, or table/part)
    trim: Callable[[Connection, datetime, int, dict], int]


def delete_older(table: str, column: str, where: str = "") -> Callable:
    """A batch: ``DELETE ... WHERE column < cutoff [AND where] ORDER BY column LIMIT batch``
    (``column`` indexed, so every batch starts where the old rows are)."""
    sql = text(f"DELETE FROM {table} WHERE {column} < :cutoff {('AND ' + where) if where else ''} "
               f"ORDER BY {column} LIMIT :batch")

    def trim(conn: Connection, cutoff: datetime, batch: int, state: dict) -> int:
        return conn.execute(sql, {"cutoff": cutoff, "batch": batch}).rowcount or 0
    return trim


def processed_events(service: str) -> Rule:
    """Event ids kept for deduplication: a redelivery comes within minutes, not weeks."""
    table = f"{service}_processed_events"
    return Rule("processed_events", table, delete_older(table, "processed_at"))


def settings(config: dict) -> dict:
    days = {k: int(v or 0) for k, v in (config.get("RETENTION_DAYS") or {}).items()}
    return {"days": days, "batch": max(1, int(config.get("RETENTION_BATCH", 1000))),
            "pause": float(config.get("RETENTION_PAUSE_SECONDS", 0.05)),
            "lease": float(config.get("RETENTION_LEASE_SECONDS", 300))}


def run(engine: Engine, service: str, rules, config: dict, now: datetime, holder: str) -> dict:
    """Trim every rule's table in batches, if this replica holds the lease. Returns
    ``{"trimmed": {name: {"rows", "batches"}}}`` or ``{"skipped": <holder>}``."""
    opts = settings(config)
    lease = Lease(engine, service, LEASE, holder)
    if not lease.take(opts["lease"]):
        return {"skipped": lease.holder_now() or "another replica"}
    trimmed: dict[str, dict] = {}
    try:
        for rule in rules:
            days = opts["days"].get(rule.key, 0)
            if days <= 0:
                continue
            done = trimmed[rule.name] = {"rows": 0, "batches": 0}
            state: dict = {"days": days, "now": now}
            while True:
                rows = _batch(engine, rule, now - timedelta(days=days), opts["batch"], state)
                done["rows"] += rows
                done["batches"] += 1
                if rows < opts["batch"]:
                    break
                if not lease.renew(opts["lease"]):
                    log.warning("retention lease lost mid-run: stopping", extra={"table": rule.name})
                    return {"trimmed": trimmed, "lost": True}
                time.sleep(opts["pause"])
            if done["rows"]:
                log.info("retention: %d rows of %s older than %d days trimmed in %d batches",
                         done["rows"], rule.name, days, done["batches"], extra={"table": rule.name})
    finally:
        lease.give_up()
    return {"trimmed": trimmed}


def _batch(engine: Engine, rule: Rule, cutoff: datetime, batch: int, state: dict) -> int:
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                return rule.trim(conn, cutoff, batch, state)
        except Exception as exc:  # a deadlock with a writer: that batch again
            if attempt == 2 or not retryable(exc):
                raise
            time.sleep(0.05 * (attempt + 1))
    return 0


class Holder(DependencyProvider):
    """Who this container is when it takes a lease (every replica, even in one process, differs)."""

    def setup(self):
        self.holder = new_holder()

    def get_dependency(self, worker_ctx) -> str:
        return self.holder


class RetentionEntrypoints:
    """Mixed into a service with ``retention_rules``: the timer that trims them."""

    retention_rules: tuple = ()
    config = Config()
    clock = Clock()
    lease_holder = Holder()

    @timer(interval=RETENTION_SECONDS)
    def trim_old_rows(self):
        """Trim this service's tables (only the replica holding the lease does)."""
        return run(self.db.get_bind(), self.name, self.retention_rules, self.config, self.clock.now(),
                   self.lease_holder)
