"""Forged and replayed operator reports and CI webhooks are refused (401/403/409) or
dropped as stale, and change nothing: not the stored reports, not a deploy record,
not the versions or builds of a linked service."""
from __future__ import annotations

import time
import uuid

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from scripts.stack import ROOT
from shared.config import load_config
from tests.fakes.drone import FakeDrone, build_payload, send_webhook
from tests.waiting import poller

APP = "forge"

wait_for = poller(timeout=90.0, interval=0.5, fail=False)


def rpc(stack):
    config = load_config(ROOT / "config" / "test.yaml")
    config["AMQP_URI"] = stack.env["AMQP_URI"]
    return ClusterRpcProxy(config, timeout=15)


def post_reports(stack, cluster, token, reports, **extra):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return requests.post(f"{stack.url}/api/v1/clusters/{cluster}/reports", json={"reports": reports, **extra},
                         headers=headers, timeout=15)


@pytest.fixture(scope="module")
def deployed(admin, clusters, stack):
    """v1 of forge/web running on the prod cluster, its record succeeded."""
    assert admin.post("/apps", json={"name": APP}).status_code == 201
    assert admin.post(f"/apps/{APP}/services", json={"name": "web"}).status_code == 201
    assert admin.post(f"/apps/{APP}/services/web/versions",
                      json={"name": "v1", "image": "nginx:1.27", "port": 80, "replicas": 1}).status_code == 201
    sent = admin.post(f"/apps/{APP}/services/web/versions/v1/deploy", json={"clusters": ["prod"]})
    assert sent.status_code == 202, sent.text
    record_id = sent.json()["record_id"]
    record = wait_for(lambda: admin.get(f"/records/{record_id}").json(),
                      lambda r: r["status"] in ("succeeded", "failed"))
    assert record["status"] == "succeeded", record
    with rpc(stack) as proxy:
        [latest] = [r for r in proxy.cluster.latest_reports("prod", APP) if r["kind"] == "Deployment"]
    return {"record_id": record_id, "latest": latest}


def state(admin, stack, record_id) -> dict:
    record = admin.get(f"/records/{record_id}").json()
    with rpc(stack) as proxy:
        reports = {c: sorted((r["kind"], r["name"], r["resource_version"], str(r["replicas"]))
                             for r in proxy.cluster.latest_reports(c, APP)) for c in ("test", "prod")}
    return {"record": (record["status"], [(t["cluster"], t["status"], t["replicas"]) for t in record["targets"]]),
            "reports": reports}


def failing(report: dict, **changes) -> dict:
    """The same Deployment, now claimed broken."""
    return {**report, "replicas": {**report["replicas"], "ready": 0, "available": 0, "updated": 0},
            "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                            "message": "forged"}], **changes}


def test_reports_with_a_forged_or_foreign_token_are_401(admin, stack, deployed):
    before = state(admin, stack, deployed["record_id"])
    prod = stack.report_token_path("prod").read_text().strip()
    test = stack.report_token_path("test").read_text().strip()
    forged = [failing(deployed["latest"], resource_version=str(int(deployed["latest"]["resource_version"]) + 10**9))]
    for token in [None, "", "mae_r_" + "A" * 43, admin.token, test, prod.upper(), prod + "x", prod[:-1],
                  "Basic " + prod]:
        answer = post_reports(stack, "prod", token, forged)
        assert answer.status_code == 401, (token and token[:8], answer.text)
        assert answer.json()["error"]["code"] == "unauthorized"
    assert post_reports(stack, "no-such-cluster", prod, forged).status_code == 401
    assert post_reports(stack, "PROD", prod, forged).status_code == 401
    assert state(admin, stack, deployed["record_id"]) == before


def test_a_cluster_cannot_report_for_another_cluster(admin, stack, deployed):
    """test's operator claims the prod Deployment is broken, naming prod in the body and
    carrying the prod record's annotation: it is stored as test's own report of an object
    test does not run MAE's target for, and the prod record does not move."""
    before = state(admin, stack, deployed["record_id"])
    test = stack.report_token_path("test").read_text().strip()
    claim = failing(deployed["latest"], cluster="prod",
                    resource_version=str(int(deployed["latest"]["resource_version"]) + 10**9))
    answer = post_reports(stack, "test", test, [claim])
    assert answer.status_code == 202, answer.text
    # and for a namespace of another application, with this record's annotation
    other = failing(deployed["latest"], namespace="fuzz-dev", resource_version=claim["resource_version"])
    assert post_reports(stack, "test", test, [other]).status_code == 202
    time.sleep(3)  # the deploy service consumes status events in batches
    after = state(admin, stack, deployed["record_id"])
    assert after["record"] == before["record"]
    assert after["reports"]["prod"] == before["reports"]["prod"]


def test_replayed_and_older_reports_are_dropped(admin, stack, deployed):
    before = state(admin, stack, deployed["record_id"])
    prod = stack.report_token_path("prod").read_text().strip()
    with rpc(stack) as proxy:
        [latest] = [r for r in proxy.cluster.latest_reports("prod", APP) if r["kind"] == "Deployment"]
    replay = post_reports(stack, "prod", prod, [latest])
    assert replay.status_code == 202 and replay.json()["accepted"] == 0 and replay.json()["dropped"] == 1
    old = failing(latest, resource_version=str(max(1, int(latest["resource_version"]) - 1)))
    stale = post_reports(stack, "prod", prod, [old])
    assert stale.status_code == 202 and stale.json() == {"accepted": 0, "dropped": 1}
    time.sleep(3)
    assert state(admin, stack, deployed["record_id"]) == before


def test_malformed_reports_are_refused(stack, deployed):
    prod = stack.report_token_path("prod").read_text().strip()
    for body in [{"kind": "Deployment"}, {**deployed["latest"], "resource_version": "'; DROP TABLE x; --"},
                 {**deployed["latest"], "namespace": "../../etc"}, "not an object"]:
        answer = post_reports(stack, "prod", prod, [body])
        assert answer.status_code in (400, 422), answer.text
        assert answer.json()["error"]["message"]


# -- CI webhooks -------------------------------------------------------------------------

SECRET = "hook-secret-" + uuid.uuid4().hex
OTHER_SECRET = "other-hook-secret-" + uuid.uuid4().hex
TOKEN = "drone-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def drone():
    with FakeDrone(TOKEN, repo="team/forge-" + uuid.uuid4().hex[:4]) as fake:
        yield fake


@pytest.fixture(scope="module")
def linked(admin, drone, deployed):
    link = admin.put(f"/apps/{APP}/services/web/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
        "image": "registry.local/team/forge", "webhook_secret": SECRET})
    assert link.status_code == 200, link.text
    # a second service, linked to another repository with its own secret
    assert admin.post(f"/apps/{APP}/services", json={"name": "other"}).status_code == 201
    other = admin.put(f"/apps/{APP}/services/other/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo + "-other", "token": TOKEN,
        "image": "registry.local/team/other", "webhook_secret": OTHER_SECRET})
    assert other.status_code == 200, other.text
    return {"app": APP, "url": link.json()["webhook_url"], "other_url": other.json()["webhook_url"]}


def ci_state(admin):
    versions = sorted(v["name"] for v in admin.get(f"/apps/{APP}/services/web/versions").json()["items"])
    records = [r["id"] for r in admin.get(f"/apps/{APP}/records").json()["items"]]
    return versions, records


def test_forged_webhooks_are_401_and_change_nothing(admin, stack, drone, linked):
    url = stack.url + linked["url"]
    before = ci_state(admin)
    build = drone.add_build(100, "success", "refs/tags/v9.9.9")
    payload = build_payload(drone.repo, build)
    link_id = int(linked["url"].rsplit("/", 1)[1])
    attempts = {
        "unsigned": requests.post(url, json=payload, timeout=15),
        "wrong secret": send_webhook(url, payload, "not-" + SECRET),
        "another link's secret": send_webhook(url, payload, OTHER_SECRET),
        "another link's secret at its address, for this repo": send_webhook(
            stack.url + linked["other_url"], payload, OTHER_SECRET),
        "tampered": send_webhook(url, payload, SECRET, tamper=True),
        "stale date": send_webhook(url, payload, SECRET, date="Wed, 01 Jan 2020 00:00:00 GMT"),
        "future date": send_webhook(url, payload, SECRET, date="Fri, 01 Jan 2100 00:00:00 GMT"),
        "unknown link": send_webhook(f"{stack.url}/api/v1/hooks/ci/drone/{link_id + 10**6}", payload, SECRET),
        "not a link id": send_webhook(f"{stack.url}/api/v1/hooks/ci/drone/{link_id}x", payload, SECRET),
        "the shared address of old": send_webhook(stack.url + "/api/v1/hooks/ci/drone", payload, SECRET),
    }
    for how, answer in attempts.items():
        expected = 202 if how.startswith("another link's secret at") else 401
        assert answer.status_code == expected, (how, answer.status_code, answer.text)
        if expected == 401:
            assert answer.json()["error"]["message"], how
    # the other link acknowledged a build of a repository it does not serve, and did nothing
    assert attempts["another link's secret at its address, for this repo"].json()["result"] == "ignored"
    # a wrong secret, another link's secret and an unknown link: one answer, word for word
    assert (attempts["wrong secret"].json() == attempts["another link's secret"].json()
            == attempts["unknown link"].json() == attempts["not a link id"].json())
    for path in ("/api/v1/hooks/ci/../../etc/passwd", "/api/v1/hooks/ci/jenkins",
                 f"/api/v1/hooks/ci/jenkins/{link_id}", f"/api/v1/hooks/ci/drone/{link_id}/x"):
        assert requests.post(stack.url + path, json=payload, timeout=15).status_code == 404, path
    assert ci_state(admin) == before


def test_a_replayed_webhook_changes_nothing(admin, stack, drone, linked):
    url = stack.url + linked["url"]
    build = drone.add_build(101, "success", "refs/tags/v3.0.0")
    payload = build_payload(drone.repo, build)
    first = send_webhook(url, payload, SECRET)
    assert first.status_code == 202 and first.json()["result"] == "recorded", first.text
    after_first = ci_state(admin)
    assert "v3-0-0" in after_first[0]
    for _ in range(3):
        again = send_webhook(url, payload, SECRET)
        assert again.status_code == 202 and again.json()["result"] == "duplicate"
    assert ci_state(admin) == after_first
