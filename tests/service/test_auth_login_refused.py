"""A login callback the auth service refuses before asking a provider (no code or state; a
state unknown, used or another provider's): the caller gets the same ``BadRequest`` as
ever (message, no details), and the ``login_failed`` audit entry says why
(``login_state.LoginRefused.audit_reason``) — on real MariaDB, Redis and RabbitMQ."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.auth.domain import login_state
from services.auth.models import AuditEntry
from services.auth.service import AuthService
from shared.errors import BadRequest
from shared.keys import Keys


@pytest.fixture
def auth(serve, config):
    return serve(AuthService, config)


def failures_from(db_engine, source_ip):
    with Session(db_engine) as db:
        return [(e.target, e.details) for e in db.scalars(
            select(AuditEntry).where(AuditEntry.action == "login_failed", AuditEntry.source_ip == source_ip)
            .order_by(AuditEntry.id))]


@pytest.mark.parametrize("code, state, message, reason", [
    ("c-1", "", "The login callback needs both 'code' and 'state'.", "missing code or state"),
    ("c-1", "never-issued", "This login link is unknown, expired or already used; start the login again.",
     "unknown, expired or reused state"),
])
def test_a_refused_callback_answers_bad_request_and_audits_the_reason(auth, db_engine, code, state, message,
                                                                       reason):
    source_ip = "198.51.100.7-" + uuid.uuid4().hex[:6]   # this test's entries only
    with pytest.raises(BadRequest) as caught:
        auth.complete_login("local", code, state, source_ip=source_ip)
    assert type(caught.value) is BadRequest   # crosses RPC as ever: a 400 with this message
    assert caught.value.message == message and caught.value.details == {}
    assert failures_from(db_engine, source_ip) == [("provider:local", {"reason": reason})]


def test_a_state_issued_for_another_provider_is_audited_as_such(auth, redis_client, config, db_engine):
    request = SimpleNamespace(state="s-" + uuid.uuid4().hex, code_verifier="v", nonce=None)
    login_state.save(redis_client, Keys.from_config(config), request, "github", None)
    source_ip = "203.0.113.7-" + uuid.uuid4().hex[:6]
    with pytest.raises(BadRequest) as caught:
        auth.complete_login("local", "c-1", request.state, source_ip=source_ip)
    assert caught.value.message == "This login was started with another provider; start the login again."
    assert failures_from(db_engine, source_ip) == [("provider:local", {"reason": "state issued for another provider"})]


def test_login_refused_is_a_bad_request_carrying_the_reason_apart_from_the_answer():
    refused = login_state.LoginRefused("Start the login again.", "unknown, expired or reused state")
    assert isinstance(refused, BadRequest) and refused.code == "bad_request"
    assert refused.message == "Start the login again." and refused.details == {}
    assert refused.audit_reason == "unknown, expired or reused state"
