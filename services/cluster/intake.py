"""The operator report intake: concurrent POSTs share one transaction (group commit).

One cluster's intakes must not interleave (their report rows would deadlock on
each other's gap locks), so each holds the cluster's row lock until it commits —
and a commit waits for the disk. Run one after another, an intake per commit is
the ceiling. Here the RPC workers only validate; their reports go to one
committer green thread per process, which takes every intake waiting at that
moment and handles them in one transaction: per cluster, the row lock, the
report token checked against that row, one SELECT of the stored versions for all their objects, each intake judged in
arrival order exactly as if it had run alone (``reports.ingest_many``), one
upsert, the announcements staged in the outbox, one commit. Each caller then
gets its own answer.

The announcements (``cluster.resource_status`` with ``reports: [...]``) are sent
by another green thread right after the commit and their outbox rows cleared
then; should the process die first, the outbox relay sends them. So a 202 means
"stored, and will be announced".
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from eventlet.event import Event
from eventlet.queue import LightQueue
from nameko.extensions import DependencyProvider
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.cluster.domain import registry, reports
from services.cluster.models import Cluster
from shared import outbox
from shared.batching import Window, consume_forever
from shared.db import Database, retryable
from shared.events import EventPublisher, envelope
from shared.retry import backoff_delay
from shared.timeutil import utcnow

log = logging.getLogger(__name__)

# Intakes and reports one transaction takes at most.
MAX_INTAKES, MAX_REPORTS = 64, 5000
ATTEMPTS = 4


@dataclass
class Intake:
    cluster: str
    token: str
    reports: list[dict]
    full_state: dict | None
    done: Event = field(default_factory=Event)
    answer: dict = field(default_factory=dict)
    accepted: list[dict] = field(default_factory=list)


class ReportIntake(DependencyProvider):
    """``self.intake(cluster, token, reports, full_state)`` → the intake's answer, once
    committed (``Unauthorized`` unless ``token`` is the cluster's report token)."""

    def setup(self):
        self.database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.events = next(d for d in self.container.dependencies
                           if isinstance(d, EventPublisher) and d.attr_name == "events")
        self.waiting: LightQueue = LightQueue()
        self.outgoing: LightQueue = LightQueue()

    def start(self):
        self.container.spawn_managed_thread(self._commit_forever)
        self.container.spawn_managed_thread(self._announce_forever)

    def get_dependency(self, worker_ctx):
        return self.submit

    def submit(self, cluster: str, token: str, items: list[dict], full_state: dict | None = None) -> dict:
        intake = Intake(cluster, token, items, full_state)
        self.waiting.put(intake)
        return intake.done.wait()  # the answer, or the transaction's exception raised here

    # -- the committer --------------------------------------------------------------
    def _commit_forever(self):
        consume_forever(self.waiting, self._commit,
                        Window(MAX_REPORTS, 0, weigh=lambda intake: len(intake.reports), max_items=MAX_INTAKES),
                        "report intakes")

    def _commit(self, group: list[Intake]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with Session(self.database.engine, expire_on_commit=False) as session:
                    staged = self._transact(session, group)
                    session.commit()
                break
            except Exception as exc:
                if attempt < ATTEMPTS and retryable(exc):
                    time.sleep(backoff_delay(attempt - 1, base=0.02, cap=0.2, jitter=0.75))
                    continue
                if len(group) > 1:  # one intake's trouble must not fail the others: each on its own
                    for intake in group:
                        if not intake.done.ready():
                            self._commit([intake])
                    return
                log.warning("report intake failed: %r", exc, extra={"intakes": len(group)})
                for intake in group:
                    if not intake.done.ready():
                        intake.done.send_exception(exc)
                return
        for intake in group:
            if not intake.done.ready():
                intake.done.send(intake.answer)
        if staged:
            self.outgoing.put(staged)

    def _transact(self, session: Session, group: list[Intake]) -> list[dict]:
        staged: list[dict] = []
        for name in sorted({i.cluster for i in group}):  # row locks in one order
            cluster = session.scalar(select(Cluster).where(Cluster.name == name).with_for_update())
            intakes = []
            for intake in (i for i in group if i.cluster == name):
                if registry.holds_report_token(cluster, intake.token):
                    intakes.append(intake)
                elif not intake.done.ready():  # the same answer for an unknown cluster and a wrong token
                    intake.done.send_exception(registry.refused())
            if not intakes:
                continue
            run: list[Intake] = []
            for intake in intakes:
                run.append(intake)
                if intake.full_state is not None:  # what it no longer sees is judged after its reports
                    self._ingest(session, name, run)
                    run = []
                    absent = reports.mark_absent(session, name, intake.full_state)
                    intake.accepted += absent
                    intake.answer["marked_deleted"] = len(absent)
            self._ingest(session, name, run)
            cluster.last_report_at = utcnow()
            accepted = [r for intake in intakes for r in intake.accepted]
            for event_id, data in reports.batch_events(name, accepted):
                event = envelope("cluster", "resource_status", data, event_id)
                outbox.stage(session, self.container.service_name, event)
                staged.append(event)
        session.flush()
        return staged

    @staticmethod
    def _ingest(session: Session, cluster: str, intakes: list[Intake]) -> None:
        if not intakes:
            return
        for intake, accepted in zip(intakes, reports.ingest_many(session, cluster, [i.reports for i in intakes])):
            intake.accepted = list(accepted)
            intake.answer.update({"accepted": len(accepted), "dropped": len(intake.reports) - len(accepted)})

    # -- the announcer --------------------------------------------------------------
    def _announce_forever(self):
        # What else committed meanwhile goes out in the same round.
        consume_forever(self.outgoing, self._announce, Window(MAX_REPORTS, 0), "report announcements")

    def _announce(self, rounds: list[list[dict]]) -> None:
        sent = []
        for event in (e for events in rounds for e in events):
            try:
                self.events.send_now("cluster", "resource_status", event)
                sent.append(event["event_id"])
            except Exception as exc:  # the outbox relay sends it
                log.warning("announcing reports failed; left to the outbox relay: %s", exc)
        try:
            outbox.forget_many(self.database.engine, self.container.service_name, sent)
        except Exception as exc:
            log.warning("could not clear sent announcements (they will be sent again): %s", exc)
