"""An event the outbox relay sends late still continues the trace of the work that staged it."""
from __future__ import annotations

import time
import uuid

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select

from shared import outbox
from shared.db import Database
from shared.events import EventPublisher, handle_event
from shared.logging import CallContext
from shared.service import rpc
from tests.service.stand_ins import start_relaying


class TracedNotes:
    name = "tracednotes"
    db = Database()
    events = EventPublisher()
    call_context = CallContext()

    @rpc
    def add(self, text):
        self.events.publish("note_added", {"text": text})
        return "ok"


class TracedListener:
    name = "tracedlistener"
    call_context = CallContext()
    seen: list = []

    @handle_event("tracednotes", "note_added")
    def on_note(self, event):
        TracedListener.seen.append(event["data"]["text"])


@pytest.fixture
def outbox_table(db_engine):
    table = outbox.model_for("tracednotes").__table__
    table.create(db_engine, checkfirst=True)
    yield table
    table.drop(db_engine)


def test_a_relayed_event_joins_the_trace_of_the_rpc_that_staged_it(
        container_factory, config, db_engine, outbox_table, span_exporter, monkeypatch):
    start_relaying(container_factory, TracedNotes, TracedListener, config, monkeypatch)
    tag = "traced-" + uuid.uuid4().hex[:6]
    with ServiceRpcProxy("tracednotes", config) as proxy:
        assert proxy.add(tag) == "ok"
    with db_engine.connect() as conn:
        [stored] = conn.execute(select(outbox_table.c.trace)).all()
    assert stored[0]["traceparent"].startswith("00-"), "the row keeps the trace context"

    deadline = time.monotonic() + 15
    while tag not in TracedListener.seen and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tag in TracedListener.seen, "the relay sent it"
    time.sleep(0.2)
    finished = {s.name: s for s in span_exporter.get_finished_spans()}
    staged, handled = finished["tracednotes.add"], finished["tracedlistener.on_note"]
    assert handled.context.trace_id == staged.context.trace_id
    assert handled.parent.span_id == staged.context.span_id
