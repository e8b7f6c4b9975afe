"""A lease in the service's own database: one replica at a time does a chore.

Redis locks are what the sweeps use; a chore that must keep its "one at a time" while
Redis fails over takes a row of ``<service>_leases`` instead (migrations 0028-0033).
A lease is held until ``until`` (the database's clock, so replicas' clocks may differ);
the holder renews it while it works and gives it up when done. A holder that dies
simply lets it run out.
"""
from __future__ import annotations

import os
import socket
import uuid

from sqlalchemy import text
from sqlalchemy.engine import Engine

# Who holds a lease: this process (host:pid) and a per-process nonce, so two containers
# of one test process are two holders too.
HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def new_holder() -> str:
    return f"{HOLDER}:{uuid.uuid4().hex[:8]}"


class Lease:
    """``Lease(engine, "deploy", "retention", holder)``: ``take(seconds)`` → held or not,
    ``renew(seconds)``, ``give_up()``. Every call is one short transaction of its own."""

    def __init__(self, engine: Engine, service: str, name: str, holder: str):
        self.engine, self.table, self.name, self.holder = engine, f"{service}_leases", name, holder

    def take(self, seconds: float) -> bool:
        """Hold the lease for ``seconds`` if it is free, run out, or ours already."""
        # The row's first INSERT commits on its own: in one transaction with the UPDATE,
        # the duplicate key's shared lock of two replicas taking at once deadlocks them.
        with self.engine.begin() as conn:
            conn.execute(text(f"INSERT IGNORE INTO {self.table} (name, holder, until) "
                              "VALUES (:name, '', '1970-01-01')"), {"name": self.name})
        with self.engine.begin() as conn:
            taken = conn.execute(text(
                f"UPDATE {self.table} SET holder = :holder, "
                "until = UTC_TIMESTAMP(6) + INTERVAL :ms * 1000 MICROSECOND "
                "WHERE name = :name AND (until < UTC_TIMESTAMP(6) OR holder = :holder)"),
                {"name": self.name, "holder": self.holder, "ms": int(seconds * 1000)})
            return taken.rowcount == 1

    renew = take

    def give_up(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(f"UPDATE {self.table} SET until = '1970-01-01' "
                              "WHERE name = :name AND holder = :holder"),
                         {"name": self.name, "holder": self.holder})

    def holder_now(self) -> str | None:
        """Who holds it now (None: nobody)."""
        with self.engine.connect() as conn:
            return conn.execute(text(f"SELECT holder FROM {self.table} "
                                     "WHERE name = :name AND until >= UTC_TIMESTAMP(6)"),
                                {"name": self.name}).scalar()
