"""The blacklist's Redis mirror, kept by a background green thread (which also
makes sure the first administrator exists).

MySQL is the truth. At start-up the mirror is filled in the background (start-up
does not wait for it), then refreshed periodically so that a Redis restart
heals by itself. While the mirror is not known to be complete (the "loaded"
marker is missing) the gateway asks the auth service instead of trusting it.
"""
from __future__ import annotations

import logging

import eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.auth.models import BlacklistEntry
from shared.db import make_engine
from shared.keys import Keys
from shared.redis import make_client

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30


def mirror(session: Session, redis, keys: Keys) -> int:
    """Copy the blacklist into Redis atomically (build aside, then rename)."""
    user_ids = [str(uid) for uid in session.scalars(select(BlacklistEntry.user_id))]
    staging = keys.blacklist + ":staging"
    pipe = redis.pipeline(transaction=True)
    pipe.delete(staging)
    if user_ids:
        pipe.sadd(staging, *user_ids)
        pipe.rename(staging, keys.blacklist)
    else:
        pipe.delete(keys.blacklist)
    pipe.set(keys.blacklist_loaded, "1", ex=REFRESH_SECONDS * 3)
    pipe.execute()
    return len(user_ids)


class BlacklistMirror(DependencyProvider):
    def setup(self):
        config = self.container.config
        self.keys = Keys.from_config(config)
        self.engine = make_engine(config["DB_URL"], 1, 0)  # one thread: one connection (the budget counts it)
        self.redis = make_client(config["REDIS_URL"])

    def start(self):
        self.container.spawn_managed_thread(self._run)

    def stop(self):
        self.engine.dispose()

    def _run(self):
        self._ensure_admin()
        while True:
            try:
                with Session(self.engine) as session:
                    count = mirror(session, self.redis, self.keys)
                log.debug("blacklist mirrored", extra={"blocked_users": count})
                delay = REFRESH_SECONDS
            except Exception as exc:  # a database or Redis outage: try again soon
                log.warning("blacklist mirror failed: %s", exc)
                delay = 2
            eventlet.sleep(delay)

    def _ensure_admin(self):
        """On first start the administrator exists (it has no password: it logs in by token)."""
        from services.auth.domain.accounts import ensure_admin

        for _ in range(30):
            try:
                with Session(self.engine) as session:
                    ensure_admin(session, self.container.config)  # BOOTSTRAP_ADMIN(_USERNAME)
                    session.commit()
                return
            except Exception as exc:
                log.warning("cannot ensure the admin user yet: %s", exc)
                eventlet.sleep(2)

    def get_dependency(self, worker_ctx):
        return self
