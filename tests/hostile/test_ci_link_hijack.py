"""Issue #14: a plain user links their own service to *another team's* repository slug with
their own webhook secret, then signs a tag build and posts it everywhere it might land —
their own link's webhook_url, the victim's link's webhook_url, and the shared address of
old. The victim's app gets nothing: no version, no build, no deploy record, nothing on the
clusters. The victim's own, correctly signed webhook still works, and an unknown link id
answers exactly what a bad signature answers (SECURITY.md: CI may announce builds of the
repository one link names, signed with that link's secret)."""
from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.e2e.test_clusters import namespace_on
from tests.kube import on_cluster
from tests.fakes.drone import FakeDrone, build_payload, send_webhook
from tests.waiting import waiter

RUN = uuid.uuid4().hex[:6]
VICTIM_SECRET = "victim-hook-" + uuid.uuid4().hex
ATTACKER_SECRET = "attacker-hook-" + uuid.uuid4().hex
TOKEN = "drone-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def drone():
    with FakeDrone(TOKEN, repo=f"victim-team/web-{RUN}") as fake:
        yield fake


def make_linked_app(user, app, drone, secret, image, **extra):
    assert user.post("/apps", json={"name": app}).status_code == 201
    assert user.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = user.post(f"/apps/{app}/services/web/versions",
                     json={"name": "v0", "image": "nginx:1.25", "port": 80, "replicas": 1})
    assert made.status_code == 201, made.text
    link = user.put(f"/apps/{app}/services/web/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
        "image": image, "webhook_secret": secret, **extra})
    assert link.status_code == 200, link.text
    return link.json()


@pytest.fixture(scope="module")
def teams(login, clusters, drone):
    victim, attacker = login(f"ci-victim-{RUN}"), login(f"ci-attacker-{RUN}")
    for user in (victim, attacker):
        assert user.get("/me").json()["is_admin"] is False
    victim_app, attacker_app = f"victim-{RUN}", f"attacker-{RUN}"
    victim_link = make_linked_app(victim, victim_app, drone, VICTIM_SECRET, "registry.local/victim/web",
                                  auto_deploy_env="test")
    # the attacker's link names the victim's repository, with a secret the attacker chose
    attacker_link = make_linked_app(attacker, attacker_app, drone, ATTACKER_SECRET, "registry.local/evil/web",
                                    auto_deploy_env="test")
    assert attacker_link["repo"] == victim_link["repo"] and attacker_link["id"] != victim_link["id"]
    waiter(timeout=30.0, interval=0.3)(lambda: namespace_on(clusters["test"], victim_app),
                                       what="the victim's namespace on test")
    return {"victim": victim, "attacker": attacker, "victim_app": victim_app, "attacker_app": attacker_app,
            "victim_link": victim_link, "attacker_link": attacker_link}


def victim_view(teams) -> dict:
    victim, app = teams["victim"], teams["victim_app"]
    return {"versions": sorted(v["name"] for v in victim.get(f"/apps/{app}/services/web/versions").json()["items"]),
            "records": [r["id"] for r in victim.get(f"/apps/{app}/records").json()["items"]]}


def images_on_cluster(clusters, app) -> set:
    out = on_cluster(clusters["test"], "get", "deployments", "-n", app, "-o", "json")
    assert out.returncode == 0, out.stderr
    return {c["image"] for d in json.loads(out.stdout)["items"]
            for c in d["spec"]["template"]["spec"]["containers"]}


def test_a_signed_build_for_the_victims_repo_reaches_no_other_link(stack, clusters, drone, teams):
    before = victim_view(teams)
    before_images = images_on_cluster(clusters, teams["victim_app"])
    build = drone.add_build(1, "success", "refs/tags/hijack-1")
    payload = build_payload(drone.repo, build)   # the victim's repository slug

    # at the attacker's own address: the attacker's own service, nobody else's
    own = send_webhook(stack.url + teams["attacker_link"]["webhook_url"], payload, ATTACKER_SECRET)
    assert own.status_code == 202 and own.json()["result"] == "recorded", own.text
    attacker = teams["attacker"]
    assert attacker.get(f"/apps/{teams['attacker_app']}/services/web/versions/hijack-1").status_code == 200
    # at the victim's address, and at the shared address of old: refused
    at_victim = send_webhook(stack.url + teams["victim_link"]["webhook_url"], payload, ATTACKER_SECRET)
    assert at_victim.status_code == 401, at_victim.text
    shared = send_webhook(stack.url + "/api/v1/hooks/ci/drone", payload, ATTACKER_SECRET)
    assert shared.status_code == 401, shared.text
    # and at every other link id nearby
    victim_id = teams["victim_link"]["id"]
    for link_id in range(max(1, victim_id - 3), victim_id + 4):
        if link_id != teams["attacker_link"]["id"]:
            guess = send_webhook(f"{stack.url}/api/v1/hooks/ci/drone/{link_id}", payload, ATTACKER_SECRET)
            assert guess.status_code == 401, (link_id, guess.text)

    # the victim's own view, and the cluster, say nothing happened
    assert victim_view(teams) == before
    victim = teams["victim"]
    assert victim.get(f"/apps/{teams['victim_app']}/services/web/versions/hijack-1").status_code == 404
    assert images_on_cluster(clusters, teams["victim_app"]) == before_images
    assert not any("evil" in image or "hijack" in image for image in images_on_cluster(clusters, teams["victim_app"]))


def test_the_victims_own_signed_webhook_still_works(stack, drone, teams):
    build = drone.add_build(2, "success", "refs/tags/v1.0.0")
    resp = send_webhook(stack.url + teams["victim_link"]["webhook_url"], build_payload(drone.repo, build),
                        VICTIM_SECRET)
    assert resp.status_code == 202 and resp.json()["result"] == "recorded", resp.text
    version = teams["victim"].get(f"/apps/{teams['victim_app']}/services/web/versions/v1-0-0")
    assert version.status_code == 200 and version.json()["image"] == "registry.local/victim/web:v1.0.0"
    # the attacker's link, on the same repository, got nothing from it
    assert teams["attacker"].get(f"/apps/{teams['attacker_app']}/services/web/versions/v1-0-0").status_code == 404


def test_an_unknown_link_and_a_bad_signature_answer_alike(stack, drone, teams):
    build = drone.add_build(3, "success", "refs/tags/probe")
    payload = build_payload(drone.repo, build)
    victim_url = stack.url + teams["victim_link"]["webhook_url"]
    answers = {
        "bad signature": send_webhook(victim_url, payload, ATTACKER_SECRET),
        "unknown link": send_webhook(f"{stack.url}/api/v1/hooks/ci/drone/{10**12 + teams['victim_link']['id']}",
                                     payload, ATTACKER_SECRET),
        "not a number": send_webhook(f"{stack.url}/api/v1/hooks/ci/drone/abc", payload, ATTACKER_SECRET),
        "right secret, unknown link": send_webhook(f"{stack.url}/api/v1/hooks/ci/drone/{10**12}", payload,
                                                   VICTIM_SECRET),
    }
    bodies = {how: (answer.status_code, answer.json()) for how, answer in answers.items()}
    assert len(set(json.dumps(b, sort_keys=True) for b in bodies.values())) == 1, bodies
    assert bodies["bad signature"][0] == 401
    # unsigned, at a real link and at none: alike too
    unsigned = [requests.post(url, json=payload, timeout=15) for url in
                (victim_url, f"{stack.url}/api/v1/hooks/ci/drone/{10**12}")]
    assert [r.status_code for r in unsigned] == [401, 401]
    assert unsigned[0].json() == unsigned[1].json()
    assert teams["victim"].get(f"/apps/{teams['victim_app']}/services/web/versions/probe").status_code == 404
