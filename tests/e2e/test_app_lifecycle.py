"""What a deleted application leaves behind (SECURITY.md: identifiers, not names, tie data
together). A team deletes its app; a plain user of another team creates an app of the
same name and tries to reach what the first one had: services, versions with their env
values, templates, ingresses, CI links, channels, deploy records and their logs."""
import uuid

import pytest

from tests.fakes.drone import FakeDrone, build_payload, send_webhook
from tests.waiting import waiter

wait_for = waiter(timeout=60.0, interval=0.3)
TOKEN = "drone-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def drone():
    with FakeDrone(TOKEN, repo="team/life-" + uuid.uuid4().hex[:4]) as fake:
        yield fake


def test_a_later_app_of_the_same_name_inherits_nothing(login, clusters, drone, stack):
    first = login(f"life-first-{uuid.uuid4().hex[:4]}")
    later = login(f"life-later-{uuid.uuid4().hex[:4]}")
    app = f"life-{uuid.uuid4().hex[:6]}"
    secret_value = f"s3cret-{uuid.uuid4().hex}"
    assert first.post("/apps", json={"name": app}).status_code == 201
    assert first.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    made = first.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.25", "port": 80, "env": [{"name": "DB_PASSWORD", "value": secret_value}]})
    assert made.status_code == 201, made.text
    body = open("services/deploy/templates/version.yaml.j2").read()
    assert first.post(f"/apps/{app}/templates", json={"name": "mine", "kind": "version", "body": body,
                                                      "fields": [{"name": "progress_deadline_seconds",
                                                                  "type": "integer", "default": 60},
                                                                 {"name": "service_port", "type": "integer",
                                                                  "default": 80}]}).status_code == 201
    assert first.post(f"/apps/{app}/ingresses", json={
        "name": "www", "host": f"{app}.example.com",
        "routes": [{"path": "/", "service": "web", "version": "v1"}]}).status_code == 201
    old_hook_secret = "hook-" + uuid.uuid4().hex
    link = first.put(f"/apps/{app}/services/web/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
        "image": "registry.local/team/web", "webhook_secret": old_hook_secret})
    assert link.status_code == 200, link.text
    old_link = link.json()
    channel = first.post(f"/apps/{app}/channels", json={
        "name": "team-bot", "type": "webhook", "url": "http://127.0.0.1:9/hook", "events": ["deploy.failed"]})
    assert channel.status_code == 201, channel.text
    record_id = first.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"env": "test"}).json()["record_id"]
    wait_for(lambda: first.get(f"/records/{record_id}").json()["finished_at"], what="the deploy to finish")
    assert first.get(f"/records/{record_id}/logs").json()["items"]

    assert first.delete(f"/apps/{app}").status_code == 204
    # the name is free again once the namespaces are gone from the clusters
    made = wait_for(lambda: (lambda r: r if r.status_code == 201 else None)(later.post("/apps", json={"name": app})),
                    what="the name to be free again")
    assert made.status_code == 201

    def inherited():
        found = {
            "services": later.get(f"/apps/{app}/services").json()["items"],
            "ingresses": later.get(f"/apps/{app}/ingresses").json()["items"],
            "records": later.get(f"/apps/{app}/records").json()["items"],
            "templates": [t for t in later.get("/templates").json()["items"] if t.get("app") == app],
            "channels": later.get(f"/apps/{app}/channels").json()["items"],
        }
        return {k: v for k, v in found.items() if v}
    wait_for(lambda: not inherited(), what="the old app's rows to go")
    assert later.get(f"/records/{record_id}").status_code == 404
    assert later.get(f"/records/{record_id}/logs").status_code == 404
    assert later.post(f"/records/{record_id}/rollback").status_code == 404
    # a service of the same name starts empty: no versions, no CI link, no builds
    assert later.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    assert later.get(f"/apps/{app}/services/web/versions").json()["items"] == []
    assert later.get(f"/apps/{app}/services/web/versions/v1").status_code == 404
    assert later.get(f"/apps/{app}/services/web/builds").status_code == 404
    for path in (f"/apps/{app}/services/web/versions", f"/apps/{app}/services", "/templates"):
        assert secret_value not in later.get(path).text
    assert later.get(f"/apps/{app}/services/web/ci").status_code == 404

    # The later team links the same service to the same repository, with its own secret: a
    # new link (its own id, to which its secrets are sealed); the old link's address and the
    # old secret vouch for nothing any more.
    new_secret = "hook-" + uuid.uuid4().hex
    relinked = later.put(f"/apps/{app}/services/web/ci", json={
        "provider": "drone", "server": drone.base_url, "repo": drone.repo, "token": TOKEN,
        "image": "registry.local/later/web", "webhook_secret": new_secret})
    assert relinked.status_code == 200, relinked.text
    assert relinked.json()["id"] != old_link["id"]
    assert relinked.json()["webhook_url"] != old_link["webhook_url"]
    build = drone.add_build(5, "success", "refs/tags/inherited")
    payload = build_payload(drone.repo, build)
    for url, secret in ((old_link["webhook_url"], old_hook_secret), (old_link["webhook_url"], new_secret),
                        (relinked.json()["webhook_url"], old_hook_secret)):
        refused = send_webhook(stack.url + url, payload, secret)
        assert refused.status_code == 401, (url, refused.text)
    assert later.get(f"/apps/{app}/services/web/versions").json()["items"] == []
    taken = send_webhook(stack.url + relinked.json()["webhook_url"], payload, new_secret)
    assert taken.status_code == 202 and taken.json()["result"] == "recorded", taken.text
    assert later.get(f"/apps/{app}/services/web/versions/inherited").json()["image"] == "registry.local/later/web:inherited"


def test_an_ingress_host_belongs_to_one_app(login, admin, clusters):
    """Another team may not publish a path (``/login``) on a team's host, nor a wildcard over
    it; wildcards are for admins; the host is free again once its app is gone."""
    owner, other = login(f"host-owner-{uuid.uuid4().hex[:4]}"), login(f"host-thief-{uuid.uuid4().hex[:4]}")
    mine, theirs = f"hosts-{uuid.uuid4().hex[:6]}", f"thief-{uuid.uuid4().hex[:6]}"
    host = f"{mine}.example.com"
    for client, app in ((owner, mine), (other, theirs)):
        assert client.post("/apps", json={"name": app}).status_code == 201
        assert client.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
        assert client.post(f"/apps/{app}/services/web/versions",
                           json={"name": "v1", "image": "nginx:1.25", "port": 80}).status_code == 201
    route = lambda path: [{"path": path, "service": "web", "version": "v1"}]  # noqa: E731
    assert owner.post(f"/apps/{mine}/ingresses", json={"name": "www", "host": host,
                                                       "routes": route("/")}).status_code == 201
    assert owner.post(f"/apps/{mine}/ingresses", json={"name": "api", "host": host,
                                                       "routes": route("/api")}).status_code == 201
    for attempt in ({"name": "login", "host": host, "routes": route("/login")},
                    {"name": "caps", "host": host.upper(), "routes": route("/")}):
        resp = other.post(f"/apps/{theirs}/ingresses", json=attempt)
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"]["code"] == "host_taken"
    wildcard = {"name": "all", "host": "*.example.com", "routes": route("/")}
    assert other.post(f"/apps/{theirs}/ingresses", json=wildcard).status_code == 403
    # an admin's wildcard for another app may not cover a host some app has already
    resp = admin.post(f"/apps/{theirs}/ingresses", json=wildcard)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "host_taken"
    assert [i["name"] for i in other.get(f"/apps/{theirs}/ingresses").json()["items"]] == []
    # a template that renders another host than the ingress's is refused when saved
    body = ("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: '{{ name }}'}\nspec:\n"
            "  rules:\n  - host: " + host + "\n    http: {paths: [{path: /login, pathType: Prefix, backend: "
            "{service: {name: web-v1, port: {number: 80}}}}]}\n")
    resp = other.post(f"/apps/{theirs}/templates", json={"name": "sneaky", "kind": "ingress", "body": body})
    assert resp.status_code == 422 and "must serve only" in resp.json()["error"]["message"], resp.text

    assert owner.delete(f"/apps/{mine}").status_code == 204
    free = waiter(timeout=30.0, interval=0.3)(
        lambda: (lambda r: r if r.status_code == 201 else None)(
            other.post(f"/apps/{theirs}/ingresses", json={"name": "later", "host": host, "routes": route("/")})),
        what="the host to be free once its app is gone")
    assert free.json()["host"] == host
