"""The deploy service on real MariaDB/Redis/RabbitMQ, driven by real ``cluster.*`` events.

The cluster side is played by the test: a small listener service records the
``deploy.apply_requested`` commands, and the test publishes ``cluster.apply_result``,
``cluster.resource_status`` and ``cluster.log`` events exactly as docs/contracts.md
describes, then reads the record back over RPC.
"""
import random
import uuid

import eventlet
import pytest
from nameko.dependency_providers import Config
from nameko.standalone.events import event_dispatcher
from sqlalchemy import text

from services.deploy.service import DeployService
from shared.errors import Conflict, Invalid, NotFound
from shared.events import envelope, handle_event
from shared.redis import Redis
from shared.service import rpc
from shared.timeutil import rfc3339, utcnow
from tests.waiting import poller

ACTOR = {"id": 1, "username": "alice", "is_admin": False}
PREFIX = ""  # this run's Redis prefix, set by the `deploy` fixture
CLUSTERS = [{"name": "test-1", "env": "test"}, {"name": "test-2", "env": "test"}]


class ClusterSide:
    """Stands in for the cluster service in these tests only: it remembers what deploy asked."""

    name = "cluster_side"
    redis = Redis()
    config = Config()

    @handle_event("deploy", "apply_requested")
    def on_apply(self, event):
        self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:apply:{event['data']['record_id']}", event["data"]["request_id"])

    @handle_event("deploy", "succeeded")
    def on_succeeded(self, event):
        self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:finished:{event['data']['record_id']}", "succeeded:" + event["event_id"])

    @handle_event("deploy", "failed")
    def on_failed(self, event):
        self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:finished:{event['data']['record_id']}", "failed:" + event["event_id"])


class OrgSide:
    """Stands in for the org service: every app here is at the platform's default policy."""

    name = "org"

    @rpc
    def app_policy(self, name):
        return {"pod_security": "baseline", "quota": None, "limits": None}


@pytest.fixture
def deploy_config(config):
    return {**config, "DEPLOY_SWEEP_SECONDS": 0.5, "DEPLOY_APPLY_TIMEOUT_SECONDS": 2,
            "DEPLOY_APPLY_ATTEMPTS": 3, "DEPLOY_DEADLINE_GRACE_SECONDS": 0.5}


@pytest.fixture
def deploy(serve, container_factory, deploy_config, redis_client):
    global PREFIX
    PREFIX = deploy_config["REDIS_PREFIX"]
    proxy = serve(DeployService, deploy_config)
    container_factory(ClusterSide, deploy_config).start()
    container_factory(OrgSide, deploy_config).start()
    return proxy


@pytest.fixture
def publish(deploy_config):
    dispatch = event_dispatcher(deploy_config)

    def send(event_type, data, event_id=None):
        event = envelope("cluster", event_type, data, event_id)
        dispatch("cluster", event_type, event)
        return event
    return send


def app_with_version(deploy, image="nginx:1.25", **config):
    app = f"a-{uuid.uuid4().hex[:8]}"
    deploy.create_service(app, {"name": "web"}, ACTOR)
    deploy.create_version(app, "web", {"name": "v1", "image": image, "port": 80, "replicas": 2, **config}, ACTOR)
    return app

wait_for = poller(timeout=15.0, interval=0.05)


def record_status(deploy, record_id, wanted, timeout=15.0):
    return wait_for(lambda: deploy.get_record(record_id), lambda r: r["status"] == wanted, timeout)


def applied(record_id, cluster, generation=2, ok=True, error=None):
    return {"request_id": f"{record_id}:{cluster}:1", "record_id": record_id, "cluster": cluster,
            "namespace": "x", "action": "apply", "ok": ok, "error": error,
            "objects": [{"kind": "Deployment", "name": "web-v1", "namespace": "x", "operation": "created",
                         "uid": f"uid-{cluster}", "generation": generation, "resource_version": "100"}] if ok else []}


def status_report(app, record_id, cluster, rv, ready, desired=2, generation=2, observed=2, pods=(), conditions=()):
    return {"cluster": cluster, "namespace": app, "kind": "Deployment", "name": "web-v1",
            "uid": f"uid-{cluster}", "generation": generation, "observed_generation": observed,
            "resource_version": str(rv), "deleted": False, "labels": {},
            "annotations": {"mae.io/record-id": str(record_id)},
            "replicas": {"desired": desired, "updated": ready, "ready": ready, "available": ready,
                         "unavailable": desired - ready},
            "conditions": list(conditions), "progress_deadline_seconds": 600, "pods": list(pods), "events": [],
            "observed_at": rfc3339(utcnow())}


def test_a_deploy_walks_to_succeeded_on_cluster_events_and_is_announced_once(deploy, publish, redis_client):
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS, ACTOR)["record_id"]
    requests = wait_for(lambda: redis_client.lrange(PREFIX + f":test:apply:{record_id}", 0, -1), lambda r: len(r) == 2)
    assert sorted(requests) == [f"{record_id}:test-1:1", f"{record_id}:test-2:1"]
    record = record_status(deploy, record_id, "applying")
    assert [t["status"] for t in record["targets"]] == ["applying", "applying"]

    for cluster in ("test-1", "test-2"):
        publish("apply_result", applied(record_id, cluster))
    record_status(deploy, record_id, "applied")
    publish("resource_status", status_report(app, record_id, "test-1", 101, ready=1))
    publish("resource_status", status_report(app, record_id, "test-2", 101, ready=2))
    record = record_status(deploy, record_id, "progressing")
    assert {t["cluster"]: t["status"] for t in record["targets"]} == {"test-1": "progressing", "test-2": "succeeded"}
    last = status_report(app, record_id, "test-1", 102, ready=2)
    publish("resource_status", last)
    record = record_status(deploy, record_id, "succeeded")
    assert record["finished_at"] and all(t["replicas"] == {"desired": 2, "updated": 2, "ready": 2, "available": 2}
                                         for t in record["targets"])
    # Duplicates and stale reports after the end change nothing, and nobody is told twice.
    publish("resource_status", last)
    publish("resource_status", status_report(app, record_id, "test-1", 90, ready=0,
                                             pods=[{"name": "p", "waiting_reason": "CrashLoopBackOff"}]))
    publish("apply_result", applied(record_id, "test-1", ok=False, error={"reason": "Invalid", "message": "x"}))
    eventlet.sleep(1.0)
    assert deploy.get_record(record_id) == record
    finished = wait_for(lambda: redis_client.lrange(PREFIX + f":test:finished:{record_id}", 0, -1), lambda r: len(r) >= 1)
    assert finished == [f"succeeded:deploy-record-{record_id}-finished"]

    logs = wait_for(lambda: deploy.record_logs(record_id)["items"],
                    lambda items: any("record succeeded" in i["line"] for i in items))
    lines = [(i["cluster"], i["line"]) for i in logs]
    assert ("test-1", "applying → applied") in lines and ("test-1", "progressing → succeeded") in lines
    assert [i["seq"] for i in logs] == sorted(i["seq"] for i in logs)

    service = deploy.get_service(app, "web")
    [version] = service["versions"]
    assert {c["cluster"]: c["status"] for c in version["clusters"]} == {"test-1": "succeeded", "test-2": "succeeded"}


def test_a_refused_manifest_fails_the_record_with_what_the_api_server_said(deploy, publish, redis_client):
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    record_status(deploy, record_id, "applying")
    publish("apply_result", applied(record_id, "test-1", ok=False, error={
        "reason": "Invalid", "code": 422, "message": 'Deployment.apps "web-v1" is invalid: spec.replicas'}))
    record = record_status(deploy, record_id, "failed")
    assert record["targets"][0]["reason"] == ("The cluster's API server refused the manifest: "
                                              'Deployment.apps "web-v1" is invalid: spec.replicas')
    assert record["reason"].startswith("test-1: The cluster's API server refused")
    finished = wait_for(lambda: redis_client.lrange(PREFIX + f":test:finished:{record_id}", 0, -1), lambda r: r)
    assert finished == [f"failed:deploy-record-{record_id}-finished"]


def test_shuffled_and_duplicated_reports_end_in_the_same_state(deploy, publish):
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    record_status(deploy, record_id, "applying")
    publish("apply_result", applied(record_id, "test-1"))
    reports = [status_report(app, record_id, "test-1", 100 + i, ready=min(i, 2)) for i in range(4)]
    stale = status_report(app, record_id - 1 if record_id > 1 else 999, "test-1", 200, ready=0)
    burst = reports * 3 + [stale]
    random.Random(7).shuffle(burst)
    for r in burst:
        publish("resource_status", r)
    record = record_status(deploy, record_id, "succeeded")
    assert record["targets"][0]["replicas"]["ready"] == 2


def test_a_newer_deploy_supersedes_the_unfinished_older_one(deploy, publish):
    app = app_with_version(deploy)
    first = deploy.deploy_version(app, "web", "v1", CLUSTERS, ACTOR)["record_id"]
    second = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    older = wait_for(lambda: deploy.get_record(first), lambda r: r["targets"][0]["status"] == "superseded")
    assert older["targets"][0]["reason"].startswith(f"a newer deploy (record {second})")
    assert older["targets"][1]["status"] in ("applying", "pending")  # test-2 was not redeployed
    # A late answer for the superseded target changes nothing.
    publish("apply_result", applied(first, "test-1"))
    publish("apply_result", applied(first, "test-2"))
    publish("resource_status", status_report(app, first, "test-2", 300, ready=2))
    record = record_status(deploy, first, "succeeded")  # superseded + succeeded → succeeded
    assert [t["status"] for t in record["targets"]] == ["superseded", "succeeded"]


def test_an_unanswered_apply_is_requested_again_then_given_up(deploy, redis_client):
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    requests = wait_for(lambda: redis_client.lrange(PREFIX + f":test:apply:{record_id}", 0, -1), lambda r: len(r) >= 3,
                        timeout=20)
    assert requests[:3] == [f"{record_id}:test-1:{n}" for n in (1, 2, 3)]
    record = record_status(deploy, record_id, "failed", timeout=20)
    assert "did not answer after 3 attempts" in record["targets"][0]["reason"]


def test_no_progress_within_the_deadline_fails_the_target_without_any_report_saying_so(deploy, publish):
    app = app_with_version(deploy, values={"progress_deadline_seconds": 1})
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    record_status(deploy, record_id, "applying")
    publish("apply_result", applied(record_id, "test-1"))
    report = status_report(app, record_id, "test-1", 101, ready=0)
    report["progress_deadline_seconds"] = 1
    publish("resource_status", report)
    record = record_status(deploy, record_id, "failed", timeout=10)
    assert record["targets"][0]["reason"] == "Not ready before the progress deadline (1 s): 0/2 replicas ready"


def test_rollback_reapplies_the_stored_manifests_of_a_succeeded_record(deploy, publish, db_engine):
    app = app_with_version(deploy, image="nginx:1.0")
    first = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    with pytest.raises(Conflict):
        deploy.rollback(first, ACTOR)  # not finished yet
    record_status(deploy, first, "applying")
    publish("apply_result", applied(first, "test-1"))
    publish("resource_status", status_report(app, first, "test-1", 101, ready=2))
    record_status(deploy, first, "succeeded")
    deploy.update_version(app, "web", "v1", {"image": "nginx:2.0"}, ACTOR)
    second = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    back = deploy.rollback(first, ACTOR)["record_id"]
    rolled = deploy.get_record(back)
    assert rolled["action"] == "rollback" and rolled["rollback_of"] == first
    assert rolled["targets"][0]["image"] == "nginx:1.0"
    assert deploy.get_record(second)["targets"][0]["status"] == "superseded"
    with db_engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT record_id, manifests FROM deploy_targets WHERE record_id IN "
                                      f"({first}, {back})")).all())
    import json

    old, new = json.loads(rows[first]), json.loads(rows[back])
    for o, n in zip(old, new):
        o["metadata"].get("annotations", {}).pop("mae.io/record-id", None)
        assert n["metadata"].get("annotations", {}).pop("mae.io/record-id", str(back)) == str(back)
    assert old == new


def test_log_lines_are_batched_and_a_redelivered_line_is_not_duplicated(deploy, publish):
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    events = [publish("log", {"record_id": record_id, "cluster": "test-1", "level": "info",
                              "line": f"line {i}", "time": rfc3339(utcnow())}) for i in range(300)]
    for event in events[:100]:  # the same events again, as a redelivery would bring them
        publish("log", event["data"], event_id=event["event_id"])

    def cluster_lines():
        return [i for i in all_lines(deploy, record_id) if i["cluster"] == "test-1" and i["line"].startswith("line ")]
    lines = wait_for(cluster_lines, lambda items: len(items) >= 300)
    eventlet.sleep(0.5)
    lines = cluster_lines()
    assert len(lines) == 300 and len({i["line"] for i in lines}) == 300
    page = deploy.record_logs(record_id, after=lines[149]["seq"], limit=50)
    assert [i["seq"] for i in page["items"]] == [i["seq"] for i in all_lines(deploy, record_id)
                                                  if i["seq"] > lines[149]["seq"]][:50]
    assert page["next_after"] == page["items"][-1]["seq"]


def all_lines(deploy, record_id):
    out, after = [], 0
    while True:
        page = deploy.record_logs(record_id, after=after, limit=200)
        out += page["items"]
        if not page["items"]:
            return out
        after = page["next_after"]


def test_templates_are_checked_when_saved(deploy):
    app = f"t-{uuid.uuid4().hex[:8]}"
    with pytest.raises(Invalid) as caught:
        deploy.create_template(app, {"name": "evil", "kind": "version",
                                     "body": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, ACTOR)
    assert "not plain data" in caught.value.message
    with pytest.raises(Invalid) as caught:
        deploy.create_template(app, {"name": "evil", "kind": "ingress",
                                     "body": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                                             "metadata: {name: x}\n"}, ACTOR)
    assert "cluster-scoped" in caught.value.message
    body = (open("services/deploy/templates/version.yaml.j2").read() +
            "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ name }}-extra'}\n"
            "data: {tier: '{{ values.tier }}'}\n")
    fields = [{"name": "tier", "type": "string", "default": "web"},
              {"name": "progress_deadline_seconds", "type": "integer", "default": 60},
              {"name": "service_port", "type": "integer", "default": 8080}]
    saved = deploy.create_template(app, {"name": "with-config", "kind": "version", "body": body, "fields": fields},
                                   ACTOR)
    assert saved["fields"][0] == {"name": "tier", "type": "string", "default": "web", "description": ""}
    listed = {t["name"]: t for t in deploy.list_templates([app])["items"]}
    assert {"default-version", "default-ingress", "with-config"} <= set(listed)
    assert listed["default-version"]["fields"] and listed["default-version"]["builtin"]
    deploy.create_service(app, {"name": "web"}, ACTOR)
    with pytest.raises(Invalid) as caught:
        deploy.create_version(app, "web", {"name": "v1", "image": "x:1", "port": 80, "template": "with-config",
                                           "values": {"tier": 3}}, ACTOR)
    assert caught.value.details["field"] == "values.tier"
    deploy.create_version(app, "web", {"name": "v1", "image": "x:1", "port": 80, "template": "with-config"}, ACTOR)
    record = deploy.get_record(deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"])
    assert record["targets"][0]["image"] == "x:1"


def test_deleting_a_version_makes_a_delete_record_for_the_clusters_it_ran_on(deploy, publish, redis_client):
    app = app_with_version(deploy)
    assert deploy.version_clusters(app, "web", "v1") == []
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS, ACTOR)["record_id"]
    record_status(deploy, record_id, "applying")
    assert deploy.version_clusters(app, "web", "v1") == CLUSTERS
    deleted = deploy.delete_version(app, "web", "v1", ACTOR)["record_id"]
    record = record_status(deploy, deleted, "applying")
    assert record["action"] == "delete"
    with pytest.raises(NotFound):
        deploy.get_version(app, "web", "v1")
    for cluster in ("test-1", "test-2"):
        publish("apply_result", {"request_id": f"{deleted}:{cluster}:1", "record_id": deleted, "cluster": cluster,
                                 "namespace": app, "action": "delete", "ok": True, "error": None,
                                 "objects": [{"kind": "Deployment", "name": "web-v1", "operation": "deleted"}]})
    record_status(deploy, deleted, "succeeded")
    # the superseded deploy record is finished too, and the name is free again
    assert deploy.get_record(record_id)["status"] == "superseded"
    deploy.create_version(app, "web", {"name": "v1", "image": "nginx:2", "port": 80}, ACTOR)
    with pytest.raises(Conflict):
        deploy.delete_service(app, "web", ACTOR)


def test_batched_reports_latest_wins_duplicates_and_stale_ones_change_nothing(deploy, publish):
    """``cluster.resource_status`` carrying ``reports: [...]`` (what the intake publishes)."""
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS, ACTOR)["record_id"]
    record_status(deploy, record_id, "applying")
    for cluster in ("test-1", "test-2"):
        publish("apply_result", applied(record_id, cluster))
    record_status(deploy, record_id, "applied")
    rising = {c: [status_report(app, record_id, c, 200 + i, ready=1 if i < 5 else 2) for i in range(6)]
              for c in ("test-1", "test-2")}
    # Each cluster's reports rise within their own events; events of both interleave, and
    # one batch repeats reports another already carried.
    for i in range(0, 6, 2):
        publish("resource_status", {"cluster": "test-1", "reports": rising["test-1"][i:i + 2]})
        publish("resource_status", {"cluster": "test-2", "reports": rising["test-2"][i:i + 2] + rising["test-1"][:i]})
    record = record_status(deploy, record_id, "succeeded")
    assert [t["replicas"] for t in record["targets"]] == [{"desired": 2, "updated": 2, "ready": 2, "available": 2}] * 2
    # Late: a stale crash report and a duplicate of the last, batched: nothing changes.
    crash = status_report(app, record_id, "test-1", 150, ready=0, pods=[{"name": "p", "waiting_reason": "CrashLoopBackOff"}])
    publish("resource_status", {"cluster": "test-1", "reports": [crash, rising["test-1"][-1]]})
    eventlet.sleep(1.0)
    assert deploy.get_record(record_id) == record


def test_a_batched_report_older_than_one_already_seen_never_moves_a_target_back(deploy, publish):
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    record_status(deploy, record_id, "applying")
    publish("apply_result", applied(record_id, "test-1"))
    record_status(deploy, record_id, "applied")
    newer = status_report(app, record_id, "test-1", 310, ready=1)
    older = status_report(app, record_id, "test-1", 300, ready=0,
                          pods=[{"name": "p", "waiting_reason": "ImagePullBackOff", "message": "x"}])
    # In one event, newest first: the older one that follows is stale.
    publish("resource_status", {"cluster": "test-1", "reports": [newer, older]})
    record = record_status(deploy, record_id, "progressing")
    assert record["targets"][0]["replicas"]["ready"] == 1
    publish("resource_status", {"cluster": "test-1", "reports": [status_report(app, record_id, "test-1", 311, ready=2)]})
    record = record_status(deploy, record_id, "succeeded")


def test_batched_cluster_log_lines_are_stored_once_even_when_redelivered(deploy, publish):
    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    lines = [{"record_id": record_id, "cluster": "test-1", "level": "info", "line": f"batched {i}",
              "time": rfc3339(utcnow())} for i in range(250)]
    events = [publish("log", {"lines": lines[i:i + 50]}) for i in range(0, 250, 50)]
    for event in events[:2]:  # redelivered
        publish("log", event["data"], event_id=event["event_id"])

    def batched():
        return [i for i in all_lines(deploy, record_id) if i["line"].startswith("batched ")]
    wait_for(batched, lambda items: len(items) >= 250)
    eventlet.sleep(0.5)
    stored = batched()
    assert [i["line"] for i in stored] == [f"batched {i}" for i in range(250)]
