"""The acceptance of the walking skeleton: the system as `make up` starts it."""
import os
import subprocess

import requests
from openapi_spec_validator import validate

from scripts.stack import METRICS_PORTS, SERVICES, Stack


def test_readyz_lists_every_service_healthy_to_admins_only(stack, admin):
    anonymous = requests.get(stack.url + "/readyz", timeout=10)
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "ready", "failing": []}  # no internal details for probes
    resp = requests.get(stack.url + "/readyz", timeout=10, headers={"Authorization": f"Bearer {admin.token}"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ready"
    assert set(body["services"]) == set(SERVICES)
    for name, state in body["services"].items():
        assert state["ok"] is True, (name, state)
        assert state["checks"]["database"]["ok"] and state["checks"]["redis"]["ok"]


def test_a_stopped_service_turns_readyz_red_by_name_and_green_when_back(stack, admin):
    stack.stop("notify-0")
    resp = requests.get(stack.url + "/readyz", timeout=10, headers={"Authorization": f"Bearer {admin.token}"})
    assert resp.status_code == 503
    body = resp.json()
    assert body["failing"] == ["notify"]
    assert body["error"]["code"] == "unavailable"
    assert "notify" in body["error"]["message"]
    assert body["services"]["auth"]["ok"] is True

    stack.start("notify", 0)
    assert stack.wait_ready(60)["status"] == "ready"


def test_gateway_serves_a_valid_openapi_document_and_json_errors(stack):
    doc = requests.get(stack.url + "/api/v1/openapi.json", timeout=10).json()
    validate(doc)
    nothing = requests.get(stack.url + "/api/v1/no-such-thing", timeout=10)
    assert nothing.status_code == 404 and nothing.json()["error"]["code"] == "not_found"
    wrong = requests.put(stack.url + "/readyz", timeout=10)
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    big = requests.post(stack.url + "/api/v1/openapi.json", data=b"{" * (2 << 20), timeout=10)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"


def test_every_process_exposes_prometheus_metrics(stack):
    requests.get(stack.url + "/readyz", timeout=10)  # makes every service answer one ping
    gateway = requests.get(stack.url + "/metrics", timeout=10).text
    assert 'mae_entrypoint_duration_seconds_count{entrypoint="readyz",kind="http",service="gateway"}' in gateway
    for name in SERVICES:
        port = METRICS_PORTS[name] + stack.port_offset
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert f'entrypoint="ping",kind="rpc",service="{name}"' in text


def test_gateway_logs_are_json_lines_with_call_ids(stack):
    import json
    import time

    requests.get(stack.url + "/api/v1/openapi.json", timeout=10)
    time.sleep(0.3)
    lines = (stack.log_dir / "gateway-0.log").read_text().splitlines()
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    access = [p for p in parsed if p.get("path") == "/api/v1/openapi.json"]
    assert access, "the gateway logged no JSON line for the request"
    line = access[-1]
    assert line["status"] == 200 and line["http_method"] == "GET"
    assert line["call_id"].startswith("gateway.openapi_document.")
    assert {"time", "level", "logger", "message"} <= set(line)


def test_down_stops_exactly_what_up_started(infra, secret_key, tmp_path):
    from tests.conftest import free_port

    mine = Stack(run_dir=tmp_path, gateway_port=free_port(), port_offset=2000,
                 env={"DB_URL": infra.db_url, "AMQP_URI": infra.amqp_uri,
                      "REDIS_URL": infra.redis_url, "MAE_SECRET_KEY": secret_key})
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        mine.start("org", 0)
        mine.start("gateway", 0)
        pids = list(mine.pids().values())
        assert len(pids) == 2
        stopped = mine.stop_all()
        assert sorted(stopped) == ["gateway-0", "org-0"]
        for pid in pids:
            assert not os.path.exists(f"/proc/{pid}") or _is_zombie(pid)
        assert mine.pids() == {}
        assert bystander.poll() is None  # not ours: left alone
    finally:
        bystander.kill()


def _is_zombie(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split()[2] == "Z"
