"""Schemathesis fuzzes the whole API from the gateway's own OpenAPI document.

Every operation is called with generated requests (examples, the coverage phase's
boundary values and negative cases, and random fuzzing), once as a plain member and
once as a platform admin. Each response must conform to the document: no 5xx, only
documented status codes, documented content types and headers, bodies that match
their schemas, schema-violating requests refused with a 4xx, and authentication not
ignored. Not checked: that every schema-valid request is accepted
(``positive_data_acceptance``): the services check more than JSON Schema can say
(cursors, IP addresses, whether a cluster answers, whether a template renders), and
refuse those with a documented 4xx.

Path parameters are half the time replaced by names that exist (an application the
member develops, its service, version, ingress, a channel, a server, a cluster of the
fuzzer's own, tokens), so the authorisation paths behind a 404 are reached too. Each
caller fuzzes with a personal token of its own, which it may not revoke.

The generated inputs are the same on every run (hypothesis ``derandomize``) unless
``MAE_FUZZ_RANDOM=1``; the case count is printed (``-s``) and must reach 2,000.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks

from gateway import openapi
from gateway.service import GatewayService
from tests.hostile.report import COUNTS  # conftest prints it in the run's summary

load_all_checks()
CHECKED = [CHECKS.get_one(name) for name in (
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
    "missing_required_header", "unsupported_method", "ignored_auth")]

MIN_CASES = 2000


# Filled by the ``fuzz_world`` fixture before the first case is drawn.
KNOWN: dict[str, list] = {}
TOKENS: dict[str, dict] = {}  # who → the personal token it fuzzes with

# The document as the gateway builds it from its routes; test_served_document_is_this
# checks that the running gateway serves exactly this one.
DOCUMENT = openapi.build(GatewayService)
schema = schemathesis.openapi.from_dict(DOCUMENT)
# Each test sends its own caller's token; generated Authorization headers would only be
# overwritten by it. Requests without a token are checked by ``ignored_auth``.
schema.config.generation.update(with_security_parameters=False)
# A body too large for MAX_BODY_BYTES is refused too: 413 is a rejection as much as 422.
schema.config.checks.negative_data_rejection.expected_statuses.append("413")


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    # Half the time, a name that exists, so the request gets past the 404.
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    known = {k: st.sampled_from(KNOWN[k]) for k in path_parameters if k in KNOWN}
    if not known:
        return st.just(path_parameters)
    return st.booleans().flatmap(
        lambda use: st.fixed_dictionaries(known).map(lambda names: {**path_parameters, **names})
        if use else st.just(path_parameters))


@pytest.fixture(scope="session")
def fuzz_world(stack, admin, member):
    """Things that exist, for path parameters to name."""
    app = "fuzz-dev"
    for path, body in [
        (f"/apps/{app}/services", {"name": "api"}),
        (f"/apps/{app}/services/api/versions", {"name": "v1", "image": "nginx:1.27", "port": 80}),
        (f"/apps/{app}/ingresses", {"name": "web", "host": "fuzz.example.com",
                                     "routes": [{"path": "/", "service": "api", "version": "v1"}]}),
    ]:
        answer = admin.post(path, json=body)
        assert answer.status_code in (201, 409), answer.text
    channel = admin.post(f"/apps/{app}/channels", json={
        "name": "ops", "type": "webhook", "url": "http://127.0.0.1:9/hook", "events": ["deploy.failed"]})
    assert channel.status_code == 201, channel.text
    server = admin.post("/servers", json={"name": "fuzz-box", "ip": "10.0.0.7"})
    assert server.status_code == 201, server.text
    # A cluster of its own to name (and maybe delete): the other tests' clusters stay.
    sandbox = stack.start_sandbox("fuzz", 0, ready_delay=0.2)
    cluster = admin.post("/clusters", json={"name": "fuzz", "env": "test", "server": sandbox["url"],
                                            "token": sandbox["token"],
                                            "ca_cert": Path(sandbox["ca_path"]).read_text()})
    assert cluster.status_code == 201, cluster.text
    # Fresh tokens to fuzz with, and one to be revoked: the fuzzer may revoke any token
    # but the one it is using.
    for who, caller in (("admin", admin), ("member", member)):
        made = caller.post("/tokens", json={"name": f"fuzz-{who}", "expires_in_days": 1})
        assert made.status_code == 201, made.text
        TOKENS[who] = made.json()
    spare = member.post("/tokens", json={"name": "fuzz-spare", "expires_in_days": 1})
    assert spare.status_code == 201, spare.text
    KNOWN.update({
        "app": [app], "svc": ["api"], "ver": ["v1"], "ing": ["web"],
        "provider": ["drone", "local"], "username": ["admin", "fuzz-member"],
        "channel_id": [channel.json()["id"]], "server_id": [server.json()["id"]],
        "name": ["fuzz"], "token_id": [str(spare.json()["id"]), str(TOKENS["admin"]["id"])],
    })
    return KNOWN


# Reproducible by default, so a red run is the code's fault and replays the same way;
# MAE_FUZZ_RANDOM=1 explores new inputs on every run (do that when changing the API).
FUZZ = hypothesis.settings(max_examples=10, deadline=None, database=None,
                           derandomize=os.environ.get("MAE_FUZZ_RANDOM") != "1",
                           suppress_health_check=list(hypothesis.HealthCheck))


def _self_harm(case, who: str) -> bool:
    """Requests that would lock the fuzzer out of its own run (revoking the token it
    uses, blocking itself or its partner): legitimate, but the rest would be 401s."""
    params = case.path_parameters or {}
    if case.operation.path == "/api/v1/tokens/{token_id}" and case.method.upper() == "DELETE":
        return str(params.get("token_id")) == str(TOKENS[who]["id"])
    if case.operation.path == "/api/v1/sessions" and case.method.upper() == "DELETE":
        return True  # would end the login sessions the other hostile tests go on using
    if case.operation.path == "/api/v1/admin/blacklist/{username}" and case.method.upper() == "PUT":
        return params.get("username") in ("fuzz-member", "admin")
    if case.operation.path.endswith("/versions/{ver}/logs") and str((case.query or {}).get("follow")) in ("1", "true"):
        # a followed log streams until the client leaves (tests/e2e/test_runtime_views.py
        # follows and leaves); the fuzzer would wait on it for the idle timeout
        return True
    return False


@schema.parametrize()
@FUZZ
def test_fuzz_as_member(case, stack, fuzz_world):
    if _self_harm(case, "member"):
        return
    COUNTS["member"] += 1
    case.call_and_validate(base_url=stack.url, headers={"Authorization": f"Bearer {TOKENS['member']['token']}"},
                           checks=CHECKED)


@schema.parametrize()
@FUZZ
def test_fuzz_as_admin(case, stack, fuzz_world):
    if _self_harm(case, "admin"):
        return
    COUNTS["admin"] += 1
    case.call_and_validate(base_url=stack.url, headers={"Authorization": f"Bearer {TOKENS['admin']['token']}"},
                           checks=CHECKED)


def test_served_document_is_this(stack):
    import requests

    served = requests.get(stack.url + "/api/v1/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(DOCUMENT))


def test_fuzz_case_count():
    total = COUNTS["member"] + COUNTS["admin"]
    print(f"\nschemathesis: {total} generated cases ({COUNTS['member']} as a member, "
          f"{COUNTS['admin']} as an admin), no failures")
    assert total >= MIN_CASES, COUNTS
