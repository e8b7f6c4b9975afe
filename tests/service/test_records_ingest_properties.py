"""Duplicated, reordered and stale cluster events never change a final state — on real MariaDB.

Property tests (hypothesis) that drive the deploy service's own status application,
``records.ingest`` (what ``DeployService.on_cluster_status`` runs for each batch), on
records created by ``records.create_record`` in this run's MariaDB database, one
transaction per delivered batch as the service commits them. Each example gets an
application (namespace) of its own, so examples never see each other's targets.

Every story is two clusters' worth of ``cluster.apply_result`` and
``cluster.resource_status`` events (rising resource versions, generations around the
applied one, replica counts moving, now and then a failing pod, reports about another
record or an older incarnation); the deliveries are the story cut into random
batches, with events repeated, shuffled, and stale reports slipped in.
"""
from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from services.deploy.domain import records, status
from services.deploy.models import Record, Target
from shared.timeutil import rfc3339, utcnow

CLUSTERS = ("test-1", "test-2")
OURS, OTHER = "ours", "other"
POD_STATES = [None, None, "ImagePullBackOff", "CrashLoopBackOff", "ContainerCreating"]


@pytest.fixture(scope="module")
def engine(infra):
    engine = create_engine(infra.db_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


def deployment(app):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-v1", "namespace": app},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 600, "selector": {"matchLabels": {"app": "web-v1"}},
                     "template": {"metadata": {"labels": {"app": "web-v1"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}}


def new_record(engine) -> tuple[int, str]:
    app = "p-" + uuid.uuid4().hex[:10]
    with Session(engine) as db:
        record, _ = records.create_record(
            db, app=app, action="deploy", subject="version", clusters=[{"name": c, "env": "test"} for c in CLUSTERS],
            actor="prop", render=lambda record_id, cluster: [deployment(app)], object_name="web-v1",
            service="web", version="v1")
        db.commit()
        return record.id, app


# -- the stories -------------------------------------------------------------------------

@st.composite
def reports_for(draw, cluster):
    """A plausible run of reports about one cluster's Deployment, in resourceVersion order."""
    out, rv = [], 10
    for _ in range(draw(st.integers(1, 8))):
        rv += draw(st.integers(1, 3))
        generation = draw(st.sampled_from([1, 2, 2, 3]))
        ready = draw(st.integers(0, 2))
        waiting = draw(st.sampled_from(POD_STATES))
        out.append({"kind": "report", "cluster": cluster, "rv": rv, "generation": generation,
                    "observed": draw(st.integers(max(0, generation - 1), generation)),
                    "ready": ready, "updated": draw(st.integers(ready, 2)),
                    "waiting": waiting, "old_pod": waiting is not None and draw(st.booleans()),
                    "record": draw(st.sampled_from([OURS, OURS, OURS, OTHER])),
                    "uid": draw(st.sampled_from(["u1", "u1", "u1", "u0"])),
                    "deleted": draw(st.integers(0, 19)) == 0})
    return out


@st.composite
def stories(draw):
    """Per cluster: its apply answer (ok, or refused now and then), then its reports."""
    story = []
    for cluster in CLUSTERS:
        ok = draw(st.integers(0, 9)) > 0
        story.append({"kind": "apply", "cluster": cluster, "ok": ok})
        story += draw(reports_for(cluster))
    return story


def event(step: dict, record_id: int, app: str) -> dict:
    """The envelope the cluster service would publish for one step of a story."""
    if step["kind"] == "apply":
        data = {"request_id": f"{record_id}:{step['cluster']}:1", "record_id": record_id, "cluster": step["cluster"],
                "namespace": app, "action": "apply", "ok": step["ok"],
                "objects": [{"kind": "Deployment", "name": "web-v1", "uid": "u1", "generation": 2}] if step["ok"] else [],
                "error": None if step["ok"] else {"reason": "Invalid", "code": 422, "message": "spec is invalid"}}
        return {"event_id": f"apply-{record_id}-{step['cluster']}", "type": "cluster.apply_result",
                "source": "cluster", "data": data}
    ready = step["ready"]
    pods = [{"name": f"web-v1-{'old' if step['old_pod'] else 'new'}-1", "phase": "Pending", "ready": False,
             "restart_count": 4, "waiting_reason": step["waiting"], "message": "Back-off",
             **({"old": True} if step["old_pod"] else {})}] if step["waiting"] else []
    about = str(record_id) if step["record"] == OURS else str(record_id + 10 ** 6)
    data = {"cluster": step["cluster"], "namespace": app, "kind": "Deployment", "name": "web-v1",
            "uid": step["uid"], "generation": step["generation"], "observed_generation": step["observed"],
            "resource_version": str(step["rv"]), "deleted": step["deleted"], "labels": {},
            "annotations": {"mae.io/record-id": about},
            "replicas": {"desired": 2, "updated": step["updated"], "ready": ready, "available": ready,
                         "unavailable": 2 - ready},
            "conditions": [], "progress_deadline_seconds": 600, "pods": pods, "events": [],
            "observed_at": rfc3339(utcnow())}
    # The cluster service derives a report's event id from the report; a re-sent one keeps it.
    return {"event_id": f"rs-{record_id}-{step['cluster']}-{step['rv']}-{step['uid']}-{step['waiting']}", "type": "cluster.resource_status",
            "source": "cluster", "data": data}


def stale_copy(step: dict) -> dict:
    """The same report as it was long before (a resourceVersion below every one of the
    story), saying the worst: whatever made the target ignore or take the original, it
    has seen something at least that new, so the copy is stale when it arrives."""
    return {**step, "rv": step["rv"] - 10, "waiting": "CrashLoopBackOff", "old_pod": False,
            "ready": 0, "updated": 0}


# -- delivering -------------------------------------------------------------------------------

def deliver(engine, events: list[dict], cuts: list[int]) -> dict:
    """Ingest ``events`` in batches (one transaction each, as the batch handler commits);
    returns what was said: finished records and transition lines."""
    said = {"finished": [], "lines": []}
    start = 0
    for end in sorted(set(c for c in cuts if 0 < c < len(events))) + [len(events)]:
        batch = events[start:end]
        start = end
        if not batch:
            continue
        with Session(engine) as db:
            outbox = records.ingest(db, batch)
            db.commit()
        said["finished"] += outbox.finished
        said["lines"] += [(l["record_id"], l["cluster"], l["line"]) for l in outbox.lines]
    return said


def state(engine, record_id: int) -> dict:
    with Session(engine) as db:
        record = db.get(Record, record_id)
        targets = db.scalars(select(Target).where(Target.record_id == record_id).order_by(Target.cluster)).all()
        return {"record": (record.status, record.reason, record.finished_at is not None),
                "targets": [(t.cluster, t.status, t.reason, t.seen_rv, t.seen_version, t.seen_observed_generation,
                             {k: v for k, v in (t.replicas or {}).items()}, t.applied_uid, t.applied_generation)
                            for t in targets]}


# No shrinking: every step of a shrink is a few transactions, and a failing example
# shrunk for minutes would blow CI's budget; the first failing example is reported as is.
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    phases=(Phase.explicit, Phase.reuse, Phase.generate))


@SETTINGS
@given(story=stories(), data=st.data())
def test_replaying_every_event_again_in_any_order_changes_nothing(engine, story, data):
    """After a story was delivered (in order, in random batches), the whole story again —
    duplicated, shuffled, with stale reports mixed in, in other batches — is a no-op:
    no status, reason, counter or record field moves, nothing is said twice."""
    record_id, app = new_record(engine)
    events = [event(s, record_id, app) for s in story]
    first = deliver(engine, events, data.draw(st.lists(st.integers(0, len(events)), max_size=4), label="cuts"))
    settled = state(engine, record_id)

    replay = events + data.draw(st.lists(st.sampled_from(events), max_size=2 * len(events)), label="dups")
    replay += [event(stale_copy(s), record_id, app) for s in story if s["kind"] == "report"]
    replay = data.draw(st.permutations(replay), label="order")
    again = deliver(engine, replay, data.draw(st.lists(st.integers(0, len(replay)), max_size=6), label="cuts2"))

    assert state(engine, record_id) == settled
    assert again == {"finished": [], "lines": []}, again
    assert first["finished"].count(record_id) <= 1


@SETTINGS
@given(story=stories(), data=st.data())
def test_duplicates_in_order_reach_the_same_final_state_as_each_event_once(engine, story, data):
    repeats = data.draw(st.lists(st.integers(1, 3), min_size=len(story), max_size=len(story)), label="repeats")
    once_id, once_app = new_record(engine)
    many_id, many_app = new_record(engine)
    once = [event(s, once_id, once_app) for s in story]
    many = [event(s, many_id, many_app) for s, n in zip(story, repeats) for _ in range(n)]
    said_once = deliver(engine, once, data.draw(st.lists(st.integers(0, len(once)), max_size=4), label="cuts"))
    said_many = deliver(engine, many, data.draw(st.lists(st.integers(0, len(many)), max_size=6), label="cuts2"))

    a, b = state(engine, once_id), state(engine, many_id)
    assert a == b
    # The log tells the same walk, each transition once.
    walk = lambda said, rid: [(c, l) for r, c, l in said["lines"] if r == rid]  # noqa: E731
    assert walk(said_once, once_id) == walk(said_many, many_id)
    assert len(said_many["finished"]) == len(said_once["finished"]) <= 1


@SETTINGS
@given(story=stories(), data=st.data())
def test_a_final_state_never_changes_whatever_arrives_after_it(engine, story, data):
    """Shuffled, duplicated and stale deliveries: from the moment a target is final,
    nothing that arrives later changes it, and a finished record is finished once."""
    record_id, app = new_record(engine)
    events = [event(s, record_id, app) for s in story]
    events += data.draw(st.lists(st.sampled_from(events), max_size=len(events)), label="dups")
    events += [event(stale_copy(s), record_id, app) for s in story if s["kind"] == "report"][:3]
    events = data.draw(st.permutations(events), label="order")
    final_at: dict[str, tuple] = {}
    finished = 0
    for i, ev in enumerate(events):
        finished += deliver(engine, [ev], [])["finished"].count(record_id)
        snap = state(engine, record_id)
        for t in snap["targets"]:
            cluster, st_, reason = t[0], t[1], t[2]
            if cluster in final_at:
                assert (st_, reason) == final_at[cluster], f"after event {i}: {cluster} left its final state"
            elif st_ in status.FINAL:
                final_at[cluster] = (st_, reason)
    assert finished <= 1
    snap = state(engine, record_id)
    all_final = all(t[1] in status.FINAL for t in snap["targets"])
    assert snap["record"][2] == all_final and finished == (1 if all_final and snap["record"][0] in
                                                           (status.SUCCEEDED, status.FAILED) else 0)


@SETTINGS
@given(story=stories(), data=st.data())
def test_the_newest_report_first_decides_and_older_ones_are_ignored(engine, story, data):
    """Level-triggered: when each cluster's newest report of our Deployment comes first
    (right after the apply answer), the rest of the story, in any order, changes nothing."""
    applies = [s for s in story if s["kind"] == "apply"]
    assume(all(a["ok"] for a in applies))
    newest = {}
    for s in story:
        if s["kind"] == "report" and s["record"] == OURS and s["uid"] == "u1" and s["generation"] >= 2:
            if s["cluster"] not in newest or s["rv"] > newest[s["cluster"]]["rv"]:
                newest[s["cluster"]] = s
    assume(newest)
    alone_id, alone_app = new_record(engine)
    first_id, first_app = new_record(engine)
    head = applies + list(newest.values())
    deliver(engine, [event(s, alone_id, alone_app) for s in head], [])
    rest = data.draw(st.permutations([s for s in story if s not in head]), label="rest")
    deliver(engine, [event(s, first_id, first_app) for s in head + rest],
            data.draw(st.lists(st.integers(0, len(story)), max_size=4), label="cuts"))

    a, b = state(engine, alone_id), state(engine, first_id)
    assert [(t[0], t[1], t[2]) for t in a["targets"]] == [(t[0], t[1], t[2]) for t in b["targets"]]
    assert a["record"] == b["record"]
