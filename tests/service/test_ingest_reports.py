"""The cluster service's report intake on real MariaDB/Redis/RabbitMQ: set-based storage,
one ``cluster.resource_status`` event per intake carrying ``reports: [...]``, latest wins,
and the outbox guarantee (committed reports are never unannounced).

The operator is played by the test (``ingest_reports`` over RPC, as the gateway calls
it); a small listener service records what reaches the bus.
"""
import json
import random
import uuid

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.cluster.domain import registry
from services.cluster.service import ClusterService
from shared import outbox
from shared.errors import BadRequest, Invalid, Unauthorized
from shared.events import EventPublisher
from shared.secretbox import SecretBox
from shared.timeutil import rfc3339, utcnow
from tests.service.broker_faults import lose_first_publish
from tests.service.stand_ins import event_recorder
from tests.waiting import poller

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


# Stands in for the deploy service: it keeps every cluster.resource_status event it hears.
StatusListener = event_recorder("status_listener", "cluster", "resource_status", into="status")


@pytest.fixture
def heard(heard_on):
    return heard_on("status")


@pytest.fixture
def cluster_service(container_factory, config):
    container_factory(StatusListener, config).start()
    container = container_factory(ClusterService, {**config, "OUTBOX_RELAY_SECONDS": 0.3})
    container.start()
    return container


@pytest.fixture
def registered(config, db_engine):
    """A cluster row as registration leaves it (nothing asks a real API server here);
    removed afterwards — layers may share the run's database, and an e2e deploy to
    "test" must not find this unreachable cluster there."""
    name = f"c-{uuid.uuid4().hex[:8]}"
    with Session(db_engine) as session:
        _, token = registry.create(session, SecretBox.from_config(config),
                                   {"name": name, "env": "test", "server": "https://127.0.0.1:9",
                                    "ca_cert": CA, "token": "sa-token"})
        session.commit()
    yield name, token
    with Session(db_engine) as session:
        registry.remove(session, registry.get(session, name))
        session.commit()


def report(name, rv, ready=1, namespace="shop", uid="u1"):
    return {"namespace": namespace, "kind": "Deployment", "name": name, "uid": uid, "generation": 1,
            "observed_generation": 1, "resource_version": str(rv), "deleted": False, "labels": {},
            "annotations": {"mae.io/record-id": "7"},
            "replicas": {"desired": 2, "updated": 2, "ready": ready, "available": ready, "unavailable": 2 - ready},
            "conditions": [], "progress_deadline_seconds": 600, "pods": [], "events": [],
            "observed_at": rfc3339(utcnow())}

wait_for = poller(timeout=15.0, interval=0.05)


def announced(events, cluster):
    """(name, resource_version) of every report announced for ``cluster``, in arrival order."""
    out = []
    for event in events:
        assert event["type"] == "cluster.resource_status"
        data = event["data"]
        if data.get("cluster") != cluster:
            continue
        assert isinstance(data["reports"], list) and data["reports"]
        for r in data["reports"]:
            assert r["cluster"] == cluster
            out.append((r["name"], int(r["resource_version"])))
    return out


def test_one_intake_stores_the_newest_per_object_and_announces_them_in_one_event(
        cluster_service, config, registered, heard, db_engine):
    name, token = registered
    batch = [report("web", 10, ready=0), report("web", 12, ready=2), report("web", 11, ready=1),
             report("web", 12, ready=2), report("api", 5), report("db", 7)]
    random.Random(3).shuffle(batch)
    with ServiceRpcProxy("cluster", config) as cluster:
        assert cluster.ingest_reports(name, token, batch) == {"accepted": 3, "dropped": 3}
        events = wait_for(heard, lambda e: announced(e, name))
        [event] = [e for e in events if e["data"]["cluster"] == name]
        assert sorted(announced([event], name)) == [("api", 5), ("db", 7), ("web", 12)]
        latest = {r["name"]: r for r in cluster.latest_reports(name)}
        assert latest["web"]["resource_version"] == "12" and latest["web"]["replicas"]["ready"] == 2

        # Duplicates and older reports change nothing and announce nothing; a newer one goes out alone.
        again = [report("web", 12, ready=2), report("web", 9, ready=0), report("api", 5), report("db", 8)]
        assert cluster.ingest_reports(name, token, again) == {"accepted": 1, "dropped": 3}
        events = wait_for(heard, lambda e: len(announced(e, name)) == 4)
        eventlet.sleep(0.5)
        assert announced(heard(), name)[3:] == [("db", 8)]
        latest = {r["name"]: r for r in cluster.latest_reports(name)}
        assert {n: r["resource_version"] for n, r in latest.items()} == {"web": "12", "api": "5", "db": "8"}
        # The event of an intake is the same event when the same reports are announced again.
        assert len({e["event_id"] for e in heard()}) == len(heard())

        with pytest.raises(Unauthorized):
            cluster.ingest_reports(name, "mae_r_" + "x" * 43, [report("web", 99)])
        with pytest.raises(Unauthorized):  # the same answer for a cluster that does not exist
            cluster.ingest_reports("no-such-cluster", token, [report("web", 99)])
        with pytest.raises(Unauthorized):  # a user token is not a report token
            cluster.ingest_reports(name, "not-a-report-token", [report("web", 99)])
        with pytest.raises(Invalid):
            cluster.ingest_reports(name, token, [{"kind": "Deployment"}])
        with pytest.raises(Invalid):  # longer than the stored row holds: refused, not a 500
            cluster.ingest_reports(name, token, [report("web", 99, uid="u" * 65)])
    with db_engine.connect() as conn:
        rows = conn.execute(text("SELECT name, resource_version, published FROM cluster_reports "
                                 "WHERE cluster = :c ORDER BY name"), {"c": name}).all()
    assert [tuple(r) for r in rows] == [("api", 5, 1), ("db", 8, 1), ("web", 12, 1)]


def test_a_report_of_the_same_version_with_a_fresher_deployment_replaces_the_stale_one(
        cluster_service, config, registered, heard, db_engine):
    """The operator's Pod stream ran ahead of its Deployment stream: a stale and a fresh report
    share resource_version 909 and only ``versions`` orders them. The fresh one is stored and
    announced; the stale one sent again afterwards, and a report without ``versions``, are not."""
    name, token = registered

    def at(dep_rv, ready):
        return {**report("web", 909, ready=ready), "versions": {"deployment": dep_rv, "replicasets": 0, "pods": 909}}

    with ServiceRpcProxy("cluster", config) as cluster:
        assert cluster.ingest_reports(name, token, [at(907, ready=1)]) == {"accepted": 1, "dropped": 0}
        assert cluster.ingest_reports(name, token, [at(908, ready=2)]) == {"accepted": 1, "dropped": 0}
        wait_for(heard, lambda e: len(announced(e, name)) == 2)
        fresh = [r for e in heard() if e["data"]["cluster"] == name for r in e["data"]["reports"]][-1]
        assert fresh["replicas"]["ready"] == 2 and fresh["versions"]["deployment"] == 908
        assert cluster.ingest_reports(name, token, [at(907, ready=1), report("web", 909, ready=0)]) == \
            {"accepted": 0, "dropped": 2}
        [latest] = [r for r in cluster.latest_reports(name) if r["name"] == "web"]
        assert latest["replicas"]["ready"] == 2
        # Two announcements, two ids: the fresh one is not taken for a re-sent stale one.
        ids = [e["event_id"] for e in heard() if e["data"]["cluster"] == name]
        assert len(ids) == len(set(ids)) == 2
        with pytest.raises(Invalid):
            cluster.ingest_reports(name, token, [{**at(910, 1), "versions": {"nodes": 3}}])
        with pytest.raises(Invalid):
            cluster.ingest_reports(name, token, [report("web", 2 ** 63)])
    with db_engine.connect() as conn:
        row = conn.execute(text("SELECT resource_version, version_key FROM cluster_reports "
                                "WHERE cluster = :c AND name = 'web'"), {"c": name}).one()
    assert row[0] == 909 and row[1] == "%019d%019d%019d%019d" % (909, 908, 0, 909)


def test_the_raw_body_the_gateway_hands_on_is_the_same_intake(cluster_service, config, registered, heard):
    name, token = registered
    with ServiceRpcProxy("cluster", config) as cluster:
        body = json.dumps({"reports": [report("web", 13, ready=2), report("web", 12, ready=2), report("api", 4)]})
        assert cluster.ingest_reports_body(name, token, body) == {"accepted": 2, "dropped": 1}
        assert {r["name"]: r["resource_version"] for r in cluster.latest_reports(name)} == {"web": "13", "api": "4"}
        wait_for(heard, lambda e: sorted(announced(e, name)) == [("api", 4), ("web", 13)])
        with pytest.raises(Unauthorized):
            cluster.ingest_reports_body(name, "mae_r_" + "x" * 43, body)
        for bad in ("", "{not json", "[1]", json.dumps({"items": []})):
            with pytest.raises(BadRequest):
                cluster.ingest_reports_body(name, token, bad)
        with pytest.raises(Invalid):
            cluster.ingest_reports_body(name, token, json.dumps({"reports": {}}))


def test_concurrent_intakes_of_interleaved_reports_keep_the_latest_and_announce_it(
        cluster_service, config, registered, heard):
    name, token = registered
    objects = [f"web-{i}" for i in range(12)]
    reports = [report(o, 1000 + step * 20 + i, ready=step % 3) for step in range(15) for i, o in enumerate(objects)]
    reports += random.Random(5).sample(reports, 40)  # duplicates
    random.Random(6).shuffle(reports)
    batches = [reports[i:i + 20] for i in range(0, len(reports), 20)]
    answers = []

    def send(batch):
        with ServiceRpcProxy("cluster", config) as cluster:
            answers.append(cluster.ingest_reports(name, token, batch))
    pool = eventlet.GreenPool(8)
    for batch in batches:
        pool.spawn_n(send, batch)
    pool.waitall()
    assert len(answers) == len(batches)  # no intake failed (deadlocks are retried)
    newest = {o: 1000 + 14 * 20 + i for i, o in enumerate(objects)}
    with ServiceRpcProxy("cluster", config) as cluster:
        latest = {r["name"]: int(r["resource_version"]) for r in cluster.latest_reports(name)}
    assert latest == newest
    accepted = sum(a["accepted"] for a in answers)
    events = wait_for(heard, lambda e: len(announced(e, name)) >= accepted)
    eventlet.sleep(0.5)
    told = announced(heard(), name)
    assert len(told) == accepted  # every accepted report announced exactly once
    assert len(set(told)) == len(told)
    for o, rv in newest.items():
        assert (o, rv) in told
    # Per object, an intake only accepts what is newer than what was stored before it.
    per_object = {}
    for o, rv in told:
        per_object.setdefault(o, []).append(rv)
    assert all(len(set(v)) == len(v) for v in per_object.values())
    assert len(events) <= len(batches)  # one event per intake at most (none when nothing was new)


def test_reports_committed_but_not_published_are_relayed_from_the_outbox(
        cluster_service, config, registered, heard, db_engine, monkeypatch):
    name, token = registered
    publisher = next(d for d in cluster_service.dependencies
                     if isinstance(d, EventPublisher) and d.attr_name == "events")
    lose_first_publish(publisher, monkeypatch)
    with ServiceRpcProxy("cluster", config) as cluster:
        assert cluster.ingest_reports(name, token, [report("web", 50), report("api", 51)]) == \
            {"accepted": 2, "dropped": 0}
    table = outbox.model_for("cluster").__table__
    with db_engine.connect() as conn:
        waiting = conn.execute(select(table.c.body)).scalars().all()
    assert [sorted(r["name"] for r in body["data"]["reports"]) for body in waiting
            if body["data"].get("cluster") == name] == [["api", "web"]]
    events = wait_for(heard, lambda e: announced(e, name), timeout=15)
    assert sorted(announced(events, name)) == [("api", 51), ("web", 50)]
    with db_engine.connect() as conn:
        assert not [b for b in conn.execute(select(table.c.body)).scalars().all()
                    if b["data"].get("cluster") == name]


def test_full_state_marks_what_the_operator_no_longer_sees_in_the_same_announcement(
        cluster_service, config, registered, heard):
    name, token = registered
    with ServiceRpcProxy("cluster", config) as cluster:
        cluster.ingest_reports(name, token, [report("web", 10), report("gone", 11)])
        answer = cluster.ingest_reports(name, token, [report("web", 20)],
                                        {"resource_version": "30",
                                         "deployments": [{"namespace": "shop", "name": "web"}]})
        assert answer == {"accepted": 1, "dropped": 0, "marked_deleted": 1}
        latest = {r["name"]: r for r in cluster.latest_reports(name)}
    assert latest["gone"]["deleted"] is True and latest["gone"]["resource_version"] == "30"
    events = wait_for(heard, lambda e: len(announced(e, name)) == 4)
    last = [e for e in events if e["data"]["cluster"] == name][-1]
    assert sorted((r["name"], r["resource_version"], r["deleted"]) for r in last["data"]["reports"]) == \
        [("gone", "30", True), ("web", "20", False)]
