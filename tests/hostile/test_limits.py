"""Size and rate limits: bodies over MAX_BODY_BYTES are refused with 413 before any
work, and writes are limited per token (429 with Retry-After), shared by replicas."""
from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from scripts.stack import ROOT, Stack

LIMIT = 1048576  # config/test.yaml MAX_BODY_BYTES


def _big(n: int) -> bytes:
    # Valid JSON, so a refusal can only be about its size.
    return json.dumps({"name": "x" * (n - 12)}).encode()


@pytest.mark.parametrize("method,path", [
    ("POST", "/apps"),
    ("POST", "/apps/big-body/services"),
    ("PATCH", "/servers/1"),
    ("POST", "/tokens"),
    ("PUT", "/apps/big-body/services/web/ci"),
    ("POST", "/clusters/test/reports"),
    ("POST", "/hooks/ci/drone"),
    ("POST", "/apps/big-body/templates"),
])
def test_body_over_the_limit_is_413_and_changes_nothing(admin, method, path):
    body = _big(LIMIT + 1)
    assert len(body) > LIMIT
    answer = admin.request(method, path, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text[:300]
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large" and str(LIMIT) in error["message"]
    assert admin.get("/apps/big-body").status_code == 404
    assert all(a["name"] != "x" * 20 for a in admin.get("/apps").json()["items"])


def test_chunked_body_over_the_limit_is_413(admin):
    """No Content-Length to refuse early: the body is cut off while it is read."""
    def chunks():
        piece = b" " * 65536
        yield b'{"name": "chunked", "description": "'
        for _ in range(LIMIT // len(piece) + 2):
            yield piece
        yield b'"}'

    answer = admin.request("POST", "/apps", data=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert admin.get("/apps/chunked").status_code == 404


def test_body_at_the_limit_is_read(admin):
    """Just under the limit the body is read, and judged on what it says (422: the name)."""
    answer = admin.post("/apps", data=_big(LIMIT), headers={"Content-Type": "application/json"})
    assert answer.status_code == 422, answer.text[:300]


# -- rate limit ------------------------------------------------------------------------

RATE = 5          # writes per token per window in the limited gateways
WINDOW = 10       # seconds: one more write every 2 s
LOGIN_RATE = 3    # login starts per address per minute in the limited gateways


@pytest.fixture(scope="module")
def limited_gateways(stack, tmp_path_factory):
    """Two more gateway replicas of the same installation (same Redis, database, vhost),
    each on its own port, started with a low write limit."""
    from tests.conftest import free_port

    gateways = []
    try:
        for i in range(2):
            gw = Stack(run_dir=tmp_path_factory.mktemp(f"limited-gw-{i}"), config=ROOT / "config" / "test.yaml",
                       env={**stack.env, "RATE_LIMIT_WRITES": str(RATE),
                            "RATE_LIMIT_WINDOW_SECONDS": str(WINDOW),
                            "LOGIN_RATE_LIMIT": str(LOGIN_RATE), "LOGIN_RATE_WINDOW_SECONDS": "60"},
                       gateway_port=free_port(), localauth_port=0)
            gw.start("gateway")
            gateways.append(gw)
        for gw in gateways:
            _wait_up(gw.url)
        yield [gw.url + "/api/v1" for gw in gateways]
    finally:
        for gw in gateways:
            gw.stop_all()


def _wait_up(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"gateway at {url} did not come up")


def _token(admin, name: str) -> str:
    answer = admin.post("/tokens", json={"name": name, "expires_in_days": 1})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def test_writes_are_limited_per_person_across_replicas(admin, login, limited_gateways):
    one, two = limited_gateways
    token = _token(admin, "rate-limited")
    headers = {"Authorization": f"Bearer {token}"}
    # A write the API refuses still counts: the limit is on what a token sends.
    write = {"json": {"name": "NOT A LABEL"}, "headers": headers, "timeout": 10}
    for i in range(RATE):
        answer = requests.post((one, two)[i % 2] + "/apps", **write)
        assert answer.status_code == 422, (i, answer.status_code, answer.text)
    refused = requests.post(one + "/apps", **write)
    assert refused.status_code == 429, refused.text
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    error = refused.json()["error"]
    assert error["code"] == "rate_limited" and error["message"]
    assert error["details"]["retry_after"] == retry_after
    assert requests.delete(two + "/tokens/999999", headers=headers, timeout=10).status_code == 429
    # Reads are never limited.
    for _ in range(3):
        assert requests.get(two + "/me", headers=headers, timeout=10).status_code == 200
    # Minting another token buys nothing: from its first request (not yet known to the
    # gateway's cache, so counted once authentication knows whose it is) it draws on its
    # owner's bucket.
    other = {"Authorization": f"Bearer {_token(admin, 'rate-other')}"}
    first = requests.post(one + "/apps", json={"name": "NOT A LABEL"}, headers=other, timeout=10)
    assert first.status_code == 429, first.text
    assert int(first.headers["Retry-After"]) >= 1
    assert requests.post(two + "/apps", json={"name": "NOT A LABEL"}, headers=other,
                         timeout=10).status_code == 429
    # Another person has a bucket of their own.
    someone = {"Authorization": f"Bearer {login('rate-someone-else').token}"}
    assert requests.post(one + "/apps", json={"name": "NOT A LABEL"}, headers=someone,
                         timeout=10).status_code == 422
    # After Retry-After seconds one more write fits, and only one.
    time.sleep(retry_after + 0.2)
    assert requests.post(two + "/apps", **write).status_code == 422
    assert requests.post(one + "/apps", **write).status_code == 429


def test_login_starts_are_limited_per_address_across_replicas(limited_gateways):
    one, two = limited_gateways
    started = [requests.get((one, two)[i % 2] + "/auth/login/local", allow_redirects=False, timeout=10)
               for i in range(LOGIN_RATE)]
    assert [r.status_code for r in started] == [302] * LOGIN_RATE
    refused = requests.get(two + "/auth/login/local", allow_redirects=False, timeout=10)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "logins started from this address" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_rate_limit_is_one_atomic_step(stack):
    """Fifty writes at once from threads on one bucket of ten: exactly ten get through."""
    from gateway.ratelimit import WriteRateLimiter
    from shared.keys import Keys
    from shared.redis import make_client

    client = make_client(stack.env["REDIS_URL"])
    try:
        limiter = WriteRateLimiter(client, Keys(stack.env["REDIS_PREFIX"] + "-atomic"), 10, 3600)
        user_id = time.time_ns()
        verdicts, barrier = [], threading.Barrier(50)

        def take():
            barrier.wait()
            verdicts.append(limiter.take_user(user_id))

        threads = [threading.Thread(target=take) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(v.allowed for v in verdicts) == 10
        assert all(v.retry_after >= 1 for v in verdicts if not v.allowed)
    finally:
        client.close()


def test_small_chunked_body_is_read(admin):
    def chunks():
        yield b'{"name": "chunked-ok",'
        yield b' "description": "sent in chunks"}'

    answer = admin.request("POST", "/apps", data=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 201, answer.text[:300]
    assert admin.get("/apps/chunked-ok").json()["description"] == "sent in chunks"
