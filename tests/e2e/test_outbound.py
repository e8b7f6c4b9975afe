"""Hostile: a person who can log in tries to make MAE call what only MAE should reach.

Through the public API only, as the owner of their own app (anyone may create one): every
SSRF target as a channel URL and as a CI server is 422 ``url_not_allowed`` at save and
nothing is created; a server that redirects (to Redis, or to a listener that records
visits) is not followed, and no answer to the caller — the channel test, the deliveries
list, the builds list and trigger — contains what the remote server said.
"""
import json
import time
import uuid

import pytest

from tests.fakes import serve_on_allowed_port
from tests.fakes.drone import send_webhook
from tests.fakes.responder import Responder
from tests.waiting import poller

MARKER = "remote-body-" + uuid.uuid4().hex   # what the hostile servers say; never echoed
SECRET = "ssrf-webhook-secret-" + uuid.uuid4().hex

wait_for = poller(timeout=30.0, interval=0.3, fail=False)


def Remote(status: int, body: str = MARKER, headers: dict | None = None) -> Responder:
    """A server on the tests' allowed ports answering every request with ``status`` and ``body``."""
    answer = (status, {**(headers or {}), "Content-Type": "application/json"}, body)
    return Responder(lambda path: answer, serve=serve_on_allowed_port)


@pytest.fixture(scope="module")
def remotes():
    started = []

    def start(*args, **kwargs):
        started.append(Remote(*args, **kwargs))
        return started[-1]
    yield start
    for remote in started:
        remote.stop()


@pytest.fixture(scope="module")
def mallory(login):
    """A plain user and the app they own (they are its owner, nothing more)."""
    run = uuid.uuid4().hex[:6]
    user = login(f"mallory-{run}")
    app = f"ssrf-{run}"
    assert user.post("/apps", json={"name": app}).status_code == 201
    assert user.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    return user, app


def ssrf_targets(stack):
    return [
        "http://127.0.0.1:6379/", "http://127.0.0.1:3306/", "http://127.0.0.1:5672/",
        "http://127.0.0.1:25672/", "http://127.0.0.1:22/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://100.100.100.200/latest/meta-data/", "http://[fd00:ec2::254]/latest/",
        "http://[::1]:3306/", "http://[::ffff:127.0.0.1]:6379/", "http://[::ffff:7f00:1]:6379/",
        "http://2130706433:6379/", "http://0x7f.1:5672/", "http://017700000001:3306/", "http://127.1:6379/",
        "http://localhost:6379/", "http://0.0.0.0:6379/", "http://0:6379/", "http://[::]:6379/",
        "http://10.0.0.1/", "http://172.17.0.1:2375/", "http://192.168.0.1/", "http://[fd00::1]/",
        stack.url + "/api/v1/apps", stack.localauth_url + "/token",
        "http://user:pw@127.0.0.1:18123/", "http://93.184.216.34@127.0.0.1:6379/",
        "http://93.184.216.34#@127.0.0.1:6379/", "http://example.com\\@127.0.0.1:6379/",
        "gopher://127.0.0.1:6379/_INFO", "file:///etc/passwd",
    ]


def refused(resp, field):
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "url_not_allowed", error
    assert error["details"]["field"] == field and error["details"]["reason"], error
    return error


def ci_body(server, repo="team/web", **extra):
    return {"provider": "drone", "server": server, "repo": repo, "token": "drone-token-x",
            "image": "registry.local/team/web", "webhook_secret": SECRET, **extra}


def test_every_ssrf_target_is_refused_at_save_and_nothing_is_created(stack, mallory):
    user, app = mallory
    for url in ssrf_targets(stack):
        for kind in ("webhook", "feishu", "dingtalk"):
            resp = user.post(f"/apps/{app}/channels", json={"name": "x", "type": kind, "url": url,
                                                            "events": ["deploy.failed"]})
            refused(resp, "url")
        refused(user.put(f"/apps/{app}/services/web/ci", json=ci_body(url)), "server")
    assert user.get(f"/apps/{app}/channels").json()["items"] == []
    assert user.get(f"/apps/{app}/services/web/builds").status_code == 404   # never linked


def test_a_ci_server_cannot_smuggle_a_path(mallory, remotes):
    user, app = mallory
    base = remotes(200, "[]").url
    for server, reason in [(base + "/?x=/api/other", "query"), (base + "#/x", "fragment"),
                           (base + "/a/../../admin", "path"), (base + "//evil", "path"),
                           (base + "/%2e%2e/", "path"), ("http://token:x@" + base[len("http://"):], "credentials")]:
        error = refused(user.put(f"/apps/{app}/services/web/ci", json=ci_body(server)), "server")
        assert error["details"]["reason"] == reason, (server, error)
    linked = user.put(f"/apps/{app}/services/web/ci", json=ci_body(base + "/ci/"))
    assert linked.status_code == 200, linked.text
    assert linked.json()["server"] == base + "/ci"   # normalised


def test_redirects_are_not_followed_and_no_remote_body_comes_back(stack, mallory, remotes):
    user, app = mallory
    visited = remotes(200, "{}")
    to_redis = remotes(302, headers={"Location": "http://127.0.0.1:6379/"})
    to_listener = remotes(302, headers={"Location": visited.url + "/followed"})
    talkative = remotes(200, json.dumps({"code": 4242, "msg": MARKER}))

    # channels: saved (the servers are allowed), then the test message
    for n, (remote, kind) in enumerate([(to_redis, "webhook"), (to_listener, "webhook"),
                                        (to_listener, "feishu"), (talkative, "feishu")]):
        created = user.post(f"/apps/{app}/channels", json={
            "name": f"hostile {n}", "type": kind, "url": remote.url + "/hook",
            "events": ["build.failed"]})
        assert created.status_code == 201, created.text
        tested = user.post(f"/apps/{app}/channels/{created.json()['id']}/test")
        assert tested.status_code == 503, tested.text
        assert MARKER not in tested.text
        message = tested.json()["error"]["message"]
        assert ("HTTP 302" in message) if remote is not talkative else ("Feishu code 4242" in message)
    assert visited.hits == []

    # CI: builds listed and asked for through a redirecting "Drone"
    link = user.put(f"/apps/{app}/services/web/ci", json=ci_body(to_listener.url, repo=f"ssrf/{app}"))
    assert link.status_code == 200, link.text
    for resp in (user.get(f"/apps/{app}/services/web/builds"),
                 user.post(f"/apps/{app}/services/web/builds", json={"ref": "main"})):
        assert resp.status_code == 503, resp.text
        assert MARKER not in resp.text and "HTTP 302" in resp.json()["error"]["message"]
    assert visited.hits == [] and to_listener.hits

    # a failed build's notice goes to the channels above: each delivery fails, in words
    build = {"number": 3, "status": "failure", "event": "tag", "ref": "refs/tags/v9.9.9", "after": "0" * 40,
             "message": "m", "link": "http://drone.invalid/3", "created": int(time.time())}
    hook = link.json().get("webhook_url") or "/api/v1/hooks/ci/drone"
    hook = hook if hook.startswith("http") else stack.url + hook
    sent = send_webhook(hook, {"action": "completed", "repo": {"slug": f"ssrf/{app}"}, "build": build}, SECRET)
    assert sent.status_code == 202, sent.text
    deliveries = wait_for(lambda: user.get(f"/apps/{app}/deliveries").json()["items"],
                          lambda items: len(items) >= 4 and all(d["status"] == "failed" for d in items))
    assert deliveries and len(deliveries) == 4 and all(d["status"] == "failed" for d in deliveries), deliveries
    listed = user.get(f"/apps/{app}/deliveries").text
    assert MARKER not in listed and "HTTP 302" in listed
    assert visited.hits == []


def test_remote_error_bodies_are_not_echoed_by_the_builds_api(mallory, remotes):
    user, app = mallory
    for status, body, expected in [(400, MARKER, 400), (500, MARKER, 503), (200, MARKER, 503),
                                   (200, json.dumps({"message": MARKER}), 503)]:
        remote = remotes(status, body)
        assert user.put(f"/apps/{app}/services/web/ci", json=ci_body(remote.url)).status_code == 200
        resp = user.get(f"/apps/{app}/services/web/builds")
        assert resp.status_code == expected, resp.text
        assert MARKER not in resp.text and remote.hits
