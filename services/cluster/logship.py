"""``cluster.log`` lines, batched across workers without ever losing one.

Every apply writes a few lines (one per object). Sent one event per line — or
even one per apply — the deploy service spends its time on messages, not on
lines. ``LogShipper`` groups them:

1. In the worker, ``self.log_lines.add(...)`` collects the apply's lines; when the
   worker's transaction commits they are in the service's outbox already
   (``flush`` stages one ``cluster.log`` event with ``lines: [...]`` per
   ``LINES_PER_EVENT`` lines, each line carrying its ``line_id``), so once the
   apply's result is committed, its lines will be delivered.
2. After the commit the staged events are handed to one shipper green thread per
   process, which waits at most ``FLUSH_SECONDS`` (or until ``LINES_PER_EVENT``
   lines are waiting), publishes them merged into one ``cluster.log`` event and
   deletes their outbox rows in one statement.
3. If the process dies in between, or the publish fails, the outbox relay sends
   the staged events as they are. Line identities (``line_id``) are the same in
   both shapes, so the deploy service, which stores each identity once, gets every
   line exactly once either way.
"""
from __future__ import annotations

import logging
import uuid

from eventlet.queue import LightQueue
from nameko.events import EventDispatcher

from services.cluster import schemas
from shared import outbox
from shared.batching import Window, consume_forever
from shared.db import Database, after_commit
from shared.events import envelope, now_rfc3339
from shared.queues import ConfirmedPublisher

log = logging.getLogger(__name__)

LINES_PER_EVENT = 500
FLUSH_SECONDS = 0.005
MAX_LINE = 8000


def events_for(lines: list[dict], size: int = LINES_PER_EVENT) -> list[dict]:
    """Envelopes of ``cluster.log`` events carrying ``lines`` (``size`` at most each); every
    line gets its identity ``<event_id>:<index>`` as ``line_id``."""
    out = []
    for start in range(0, len(lines), size):
        event_id = uuid.uuid4().hex
        chunk = [{**line, "line_id": f"{event_id}:{i}"} for i, line in enumerate(lines[start:start + size])]
        out.append(envelope("cluster", schemas.LOG, schemas.log_lines(chunk), event_id))
    return out


def merge(events: list[dict], size: int = LINES_PER_EVENT) -> list[dict]:
    """Staged events → as few events as ``size`` allows; lines keep their ``line_id``."""
    lines = [line for event in events for line in event["data"]["lines"]]
    return [envelope("cluster", schemas.LOG, schemas.log_lines(lines[i:i + size])) for i in range(0, len(lines), size)]


class LogShipper(EventDispatcher):
    """The ``log_lines`` dependency of the cluster service (see the module docstring)."""

    publisher_cls = ConfirmedPublisher  # confirms + mandatory: a returned batch stays in the outbox

    def __init__(self, lines_per_event: int = LINES_PER_EVENT, flush_seconds: float = FLUSH_SECONDS, **kwargs):
        super().__init__(**kwargs)
        self.lines_per_event, self.flush_seconds = lines_per_event, flush_seconds
        self.lines: dict = {}

    def setup(self):
        super().setup()
        self.database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.service = self.container.service_name
        self.queue: LightQueue = LightQueue()

    def start(self):
        self.container.spawn_managed_thread(self._ship_forever)

    # -- in the worker -------------------------------------------------------------
    def get_dependency(self, worker_ctx):
        shipper = self

        class Lines:
            def __init__(self):
                self.pending: list[dict] = []

            def add(self, record_id, cluster, level: str, line: str) -> None:
                self.pending.append({"record_id": record_id, "cluster": cluster, "level": level,
                                     "line": str(line)[:MAX_LINE], "time": now_rfc3339()})
                if len(self.pending) >= shipper.lines_per_event:
                    self.flush()

            def flush(self) -> None:
                """Stage what is pending in this worker's transaction; it ships after the commit."""
                if not self.pending:
                    return
                session = shipper.database.sessions[worker_ctx]
                staged = events_for(self.pending, shipper.lines_per_event)
                self.pending = []
                for event in staged:
                    outbox.stage(session, shipper.service, event)
                after_commit(worker_ctx, lambda: [shipper.queue.put(e) for e in staged])

        return Lines()

    # -- the shipper -----------------------------------------------------------------
    def _ship_forever(self):
        # A failed batch stays in the outbox, which the relay sends.
        consume_forever(self.queue, self._ship, Window(self.lines_per_event, self.flush_seconds,
                                                       weigh=lambda event: len(event["data"]["lines"])),
                        "staged log events (left to the outbox relay)")

    def _ship(self, staged: list[dict]) -> None:
        for event in merge(staged, self.lines_per_event):
            self.publisher.publish(event, exchange=self.exchange, routing_key="log")
        outbox.forget_many(self.database.engine, self.service, [e["event_id"] for e in staged])
