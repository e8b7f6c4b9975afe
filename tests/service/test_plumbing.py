"""The shared plumbing against real MariaDB, Redis and RabbitMQ."""
import json
import time
import uuid

import eventlet
import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client import REGISTRY
from sqlalchemy import Integer, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared import outbox
from shared.db import Database, retry_deadlocks
from shared.errors import Invalid, NotFound, Unavailable
from shared.events import EventPublisher, handle_event
from shared.metrics import Metrics
from shared.redis import Redis
from shared.rpc import ServiceRpc
from shared.service import rpc
from shared.web import route
from tests.service.stand_ins import start_relaying


class PlumbingBase(DeclarativeBase):
    pass


class Note(PlumbingBase):
    __tablename__ = "plumbing_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(String(100))


class NotesService:
    name = "notes"
    db = Database()
    events = EventPublisher()
    metrics = Metrics()

    @rpc
    def add(self, text, fail=False):
        self.db.add(Note(text=text))
        self.db.flush()
        self.events.publish("note_added", {"text": text})
        if fail:
            raise Invalid("The note is not acceptable.", {"text": text})
        return "ok"

    @rpc
    def missing(self):
        raise NotFound("Cluster prod-1 was not found.", {"cluster": "prod-1"})


class ListenerService:
    """Fails the first two deliveries of every event, then records it."""

    name = "listener"
    redis = Redis()

    @handle_event("notes", "note_added")
    def on_note(self, event):
        attempts = self.redis.incr(f"test:attempts:{event['data']['text']}")
        if attempts <= 2:
            raise RuntimeError("transient failure")
        self.redis.rpush(f"test:seen:{event['data']['text']}", json.dumps(event))


class CallerService:
    name = "caller"
    ghost = ServiceRpc("ghost", timeout=1)
    never = ServiceRpc("never-existed", timeout=1)

    @rpc
    def call_ghost(self):
        return self.ghost.anything()

    @rpc
    def call_never(self):
        return self.never.anything()


class GhostService:
    name = "ghost"

    @rpc
    def anything(self):
        return "boo"


class WebService:
    name = "web"

    @route("GET", "/things/<name>")
    def thing(self, request, name):
        if name == "bad":
            raise Invalid("A thing's name must be a DNS label.", {"field": "name"})
        return {"name": name}


@pytest.fixture
def notes_table(db_engine):
    PlumbingBase.metadata.create_all(db_engine)
    outbox.model_for("notes").__table__.create(db_engine, checkfirst=True)
    yield
    PlumbingBase.metadata.drop_all(db_engine)


def rows(db_engine, text_value):
    with db_engine.connect() as conn:
        return conn.execute(select(Note.text).where(Note.text == text_value)).all()


def test_db_provider_commits_before_the_caller_is_answered(container_factory, config, db_engine, notes_table):
    container = container_factory(NotesService, config)
    container.start()
    with ServiceRpcProxy("notes", config) as notes:
        assert notes.add("committed") == "ok"
        # The reply arrived, so the row must already be visible to anyone.
        assert len(rows(db_engine, "committed")) == 1


def test_db_provider_rolls_back_on_error_and_publishes_nothing(container_factory, config, db_engine,
                                                               notes_table, redis_client):
    container_factory(NotesService, config).start()
    container_factory(ListenerService, config).start()
    tag = "rolled-" + uuid.uuid4().hex[:6]
    with ServiceRpcProxy("notes", config) as notes:
        with pytest.raises(Invalid) as caught:
            notes.add(tag, fail=True)
    assert caught.value.details == {"text": tag}
    assert rows(db_engine, tag) == []
    eventlet.sleep(1.0)
    assert redis_client.get(f"test:attempts:{tag}") is None  # nobody heard about it


def test_failing_event_handler_does_not_lose_its_message(container_factory, config, notes_table, redis_client):
    container_factory(NotesService, config).start()
    container_factory(ListenerService, config).start()
    tag = "event-" + uuid.uuid4().hex[:6]
    with ServiceRpcProxy("notes", config) as notes:
        notes.add(tag)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not redis_client.llen(f"test:seen:{tag}"):
        eventlet.sleep(0.1)
    seen = [json.loads(x) for x in redis_client.lrange(f"test:seen:{tag}", 0, -1)]
    assert int(redis_client.get(f"test:attempts:{tag}")) == 3
    assert len(seen) == 1
    event = seen[0]
    assert event["type"] == "notes.note_added"
    assert event["source"] == "notes"
    assert len(event["event_id"]) == 32
    assert event["occurred_at"].endswith("Z")
    assert event["data"] == {"text": tag}


def test_domain_errors_cross_rpc_as_themselves(container_factory, config, notes_table):
    container_factory(NotesService, config).start()
    with ServiceRpcProxy("notes", config) as notes:
        with pytest.raises(NotFound) as caught:
            notes.missing()
    assert caught.value.message == "Cluster prod-1 was not found."
    assert caught.value.details == {"cluster": "prod-1"}


def test_rpc_to_a_stopped_service_gives_up_with_unavailable(container_factory, config):
    ghost = container_factory(GhostService, config)
    ghost.start()
    ghost.stop()  # its queue stays, with nobody consuming it
    container_factory(CallerService, config).start()
    with ServiceRpcProxy("caller", config) as caller:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            caller.call_ghost()
        assert time.monotonic() - started < 5
        assert "ghost" in caught.value.message
        with pytest.raises(Unavailable):
            caller.call_never()


def test_metrics_count_latency_and_errors_per_entrypoint(container_factory, config, notes_table):
    container_factory(NotesService, config).start()
    labels = {"service": "notes", "kind": "rpc", "entrypoint": "missing"}
    before = REGISTRY.get_sample_value("mae_entrypoint_duration_seconds_count", labels) or 0
    errors_before = REGISTRY.get_sample_value(
        "mae_entrypoint_errors_total", {**labels, "error": "NotFound"}) or 0
    with ServiceRpcProxy("notes", config) as notes:
        for _ in range(3):
            with pytest.raises(NotFound):
                notes.missing()
    # a histogram's count moves only after the worker finished; give it a beat
    eventlet.sleep(0.2)
    assert REGISTRY.get_sample_value("mae_entrypoint_duration_seconds_count", labels) == before + 3
    assert REGISTRY.get_sample_value(
        "mae_entrypoint_errors_total", {**labels, "error": "NotFound"}) == errors_before + 3


def test_http_errors_are_json_in_the_api_error_format(container_factory, config):
    container_factory(WebService, config).start()
    base = "http://" + config["WEB_SERVER_ADDRESS"]
    ok = requests.get(f"{base}/things/web")
    assert ok.status_code == 200 and ok.json() == {"name": "web"}

    bad = requests.get(f"{base}/things/bad")
    assert bad.status_code == 422
    assert bad.json()["error"] == {"code": "invalid", "message": "A thing's name must be a DNS label.",
                                   "details": {"field": "name"}}

    missing = requests.get(f"{base}/nothing/here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    wrong = requests.delete(f"{base}/things/web")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["Allow"]

    big = requests.post(f"{base}/things/web", data=b"x" * (config["MAX_BODY_BYTES"] + 1))
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "payload_too_large"


def test_service_ping_checks_database_and_redis(container_factory, config):
    from services.org.service import OrgService

    container_factory(OrgService, config).start()
    with ServiceRpcProxy("org", config) as org:
        answer = org.ping()
    assert answer["service"] == "org" and answer["ok"] is True
    assert answer["checks"]["database"]["ok"] and answer["checks"]["redis"]["ok"]


def test_service_ping_reports_a_broken_database_instead_of_hanging(container_factory, config):
    from services.org.service import OrgService

    broken = {**config, "DB_URL": "mysql+pymysql://root:@127.0.0.1:1/nowhere"}
    container_factory(OrgService, broken).start()
    with ServiceRpcProxy("org", broken) as org:
        answer = org.ping()
    assert answer["ok"] is False
    assert answer["checks"]["database"]["ok"] is False
    assert "OperationalError" in answer["checks"]["database"]["error"]
    assert answer["checks"]["redis"]["ok"] is True



def test_service_probes_tell_the_kubelet_alive_and_ready(container_factory, config):
    """k8s/ probes every service replica: /healthz (the process serves) and /readyz (it can work)."""
    from services.org.service import OrgService

    container_factory(OrgService, config).start()
    base = "http://" + config["WEB_SERVER_ADDRESS"]
    assert requests.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"
    ready = requests.get(f"{base}/readyz", timeout=5)
    assert ready.status_code == 200
    assert ready.json()["ok"] is True and ready.json()["checks"]["database"]["ok"] is True


def test_a_replica_without_its_database_is_alive_but_not_ready(container_factory, config):
    from services.org.service import OrgService

    broken = {**config, "DB_URL": "mysql+pymysql://root:@127.0.0.1:1/nowhere"}
    container_factory(OrgService, broken).start()
    base = "http://" + broken["WEB_SERVER_ADDRESS"]
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    ready = requests.get(f"{base}/readyz", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False
    assert ready.json()["checks"]["redis"]["ok"] is True

def test_migrations_created_every_services_tables(db_engine):
    with db_engine.connect() as conn:
        tables = {row[0] for row in conn.execute(text("SHOW TABLES"))}
    for service in ("auth", "org", "deploy", "cluster", "server", "notify"):
        assert f"{service}_processed_events" in tables


def test_an_event_whose_publish_failed_after_commit_is_relayed_from_the_outbox(
        container_factory, config, db_engine, notes_table, redis_client, monkeypatch):
    start_relaying(container_factory, NotesService, ListenerService, config, monkeypatch)
    tag = "outbox-" + uuid.uuid4().hex[:6]
    with ServiceRpcProxy("notes", config) as proxy:
        assert proxy.add(tag) == "ok"
    table = outbox.model_for("notes").__table__
    with db_engine.connect() as conn:
        assert conn.execute(select(table.c.event_id)).all(), "the event waits in the outbox"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not redis_client.llen(f"test:seen:{tag}"):
        eventlet.sleep(0.1)
    assert redis_client.llen(f"test:seen:{tag}") == 1
    with db_engine.connect() as conn:
        assert conn.execute(select(table.c.event_id)).all() == []


def test_a_published_event_leaves_no_outbox_row(container_factory, config, db_engine, notes_table):
    container_factory(NotesService, config).start()
    with ServiceRpcProxy("notes", config) as proxy:
        proxy.add("clean-" + uuid.uuid4().hex[:6])
    table = outbox.model_for("notes").__table__
    with db_engine.connect() as conn:
        assert conn.execute(select(table.c.event_id)).all() == []


class DeadlockingService:
    """Its first two attempts die as MariaDB reports a deadlock (error 1213)."""

    name = "deadlocking"
    db = Database()
    redis = Redis()

    @rpc
    @retry_deadlocks()
    def add(self, text_value):
        self.db.add(Note(text=text_value))
        self.db.flush()
        if self.redis.incr(f"test:deadlock:{text_value}") <= 2:
            import pymysql
            from sqlalchemy.exc import OperationalError

            raise OperationalError("INSERT ...", {}, pymysql.err.OperationalError(1213, "Deadlock found"))
        return "ok"

    @rpc
    def add_once(self, text_value):
        self.db.add(Note(text=text_value))
        self.db.flush()
        import pymysql
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT ...", {}, pymysql.err.OperationalError(1213, "Deadlock found"))


def test_a_transaction_marked_retryable_is_run_again_after_a_deadlock(container_factory, config, db_engine,
                                                                       notes_table, redis_client):
    container_factory(DeadlockingService, config).start()
    tag = "deadlock-" + uuid.uuid4().hex[:6]
    with ServiceRpcProxy("deadlocking", config) as proxy:
        assert proxy.add(tag) == "ok"
        assert int(redis_client.get(f"test:deadlock:{tag}")) == 3
        assert len(rows(db_engine, tag)) == 1  # the rolled-back attempts left nothing
        other = tag + "-x"
        with pytest.raises(Exception):
            proxy.add_once(other)  # not marked: the error reaches the caller
        assert rows(db_engine, other) == []
