"""The auth domain's rules for tokens and the audit query (pure; services/auth/domain/).

What a token may be called and scoped, when a personal token ends, how a device is
written down, what revoking marks, and which ``since`` the audit trail accepts.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.auth.domain import accounts, sessions
from services.auth.models import Token
from shared.errors import Forbidden, Invalid
from shared.timeutil import utcnow

NOW = datetime(2026, 3, 1, 12, 0, 0)


# -- scope_of --------------------------------------------------------------------------

def test_a_token_without_a_scope_may_write_and_the_two_scopes_are_kept():
    assert sessions.scope_of(None) == "write"
    assert sessions.scope_of("read") == "read"
    assert sessions.scope_of("write") == "write"


@pytest.mark.parametrize("scope", ["", "admin", "READ", "read ", "read,write", 1, ["read"], True])
def test_any_other_scope_is_refused_naming_the_field(scope):
    with pytest.raises(Invalid) as caught:
        sessions.scope_of(scope)
    assert caught.value.details == {"field": "scope"}


# -- personal_expiry -------------------------------------------------------------------

def test_without_a_lifetime_a_token_lives_the_default_days_or_forever_when_there_is_none():
    assert sessions.personal_expiry(None, False, now=NOW) == NOW + timedelta(days=sessions.DEFAULT_TOKEN_DAYS)
    assert sessions.personal_expiry(None, False, default_days=30, now=NOW) == NOW + timedelta(days=30)
    # A deployment configured without a default (0) gives tokens that never end, to anyone.
    assert sessions.personal_expiry(None, False, default_days=0, now=NOW) is None


@pytest.mark.parametrize("days", [1, 90, sessions.MAX_TOKEN_DAYS])
def test_a_lifetime_asked_for_is_counted_from_now(days):
    for is_admin in (False, True):
        assert sessions.personal_expiry(days, is_admin, now=NOW) == NOW + timedelta(days=days)


def test_never_expiring_is_for_administrators_only():
    assert sessions.personal_expiry(0, True, now=NOW) is None
    with pytest.raises(Forbidden) as caught:
        sessions.personal_expiry(0, False, now=NOW)
    assert caught.value.details == {"field": "expires_in_days"}
    assert str(sessions.MAX_TOKEN_DAYS) in caught.value.message


@pytest.mark.parametrize("days", [-1, sessions.MAX_TOKEN_DAYS + 1, 1.5, 30.0, "30", True, False, [30]])
def test_a_lifetime_that_is_not_a_whole_number_of_days_in_range_is_refused(days):
    # True and False are ints to Python; as a lifetime they are a client's mistake.
    for is_admin in (False, True):
        with pytest.raises(Invalid) as caught:
            sessions.personal_expiry(days, is_admin, now=NOW)
        assert caught.value.details == {"field": "expires_in_days"}


def test_without_a_given_now_the_lifetime_starts_at_the_current_time():
    before = utcnow()
    ends = sessions.personal_expiry(7, False)
    assert before + timedelta(days=7) <= ends <= utcnow() + timedelta(days=7)


# -- token_name ------------------------------------------------------------------------

def test_a_name_is_kept_without_surrounding_blanks():
    assert sessions.token_name("  ci deploys  ") == "ci deploys"
    assert sessions.token_name("部署令牌") == "部署令牌"
    assert sessions.token_name("x" * 100) == "x" * 100


@pytest.mark.parametrize("name", [None, "", "   ", 7, ["ci"]])
def test_a_name_is_required(name):
    with pytest.raises(Invalid) as caught:
        sessions.token_name(name)
    assert caught.value.details == {"field": "name"}
    assert "required" in caught.value.message


@pytest.mark.parametrize("name", ["x" * 101, " " + "x" * 100, "ci\x00token", "ci\n", "\tci", "ci\x7f", "a\x1bb"])
def test_a_name_too_long_as_sent_or_with_a_control_character_anywhere_is_refused(name):
    # Length counts as sent, before blanks are trimmed; a control character at an end is
    # refused rather than quietly trimmed away.
    with pytest.raises(Invalid) as caught:
        sessions.token_name(name)
    assert caught.value.details == {"field": "name"}
    assert "control characters" in caught.value.message


# -- device_of -------------------------------------------------------------------------

def test_a_device_is_the_user_agent_printable_and_bounded():
    assert sessions.device_of(None) == ""
    assert sessions.device_of("") == ""
    agent = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
    assert sessions.device_of(agent) == agent
    # Header smuggling and terminal escapes do not reach a session list.
    assert sessions.device_of("curl/8.5\r\nX-Injected: 1\x1b[31m") == "curl/8.5X-Injected: 1[31m"
    assert sessions.device_of("é" * 500) == "é" * sessions.DEVICE_CHARS


# -- revoke ----------------------------------------------------------------------------

def test_revoking_marks_each_token_once_and_hands_back_their_hashes_in_order():
    earlier = NOW - timedelta(days=3)
    fresh = Token(token_hash="a" * 64)
    already = Token(token_hash="b" * 64, revoked_at=earlier)
    before = utcnow()
    assert sessions.revoke([fresh, already]) == ["a" * 64, "b" * 64]
    assert before <= fresh.revoked_at <= utcnow()
    assert already.revoked_at == earlier  # the first revocation's time stands
    assert sessions.revoke([]) == []


# -- audit_query 'since' ---------------------------------------------------------------

def since_of(stmt):
    """The bound value of the statement's ``created_at >=`` condition, if any."""
    compiled = stmt.compile()
    return [v for k, v in compiled.params.items() if k.startswith("created_at")]


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "1700000000",
                                   "2026-01-31 00:00:00 UTC"])
def test_a_since_that_is_not_an_rfc3339_time_is_refused_naming_the_field(since):
    with pytest.raises(Invalid) as caught:
        accounts.audit_query(None, None, since)
    assert caught.value.details == {"field": "since"}


def test_since_filters_from_that_instant_in_utc():
    assert since_of(accounts.audit_query(None, None, "2026-01-31T00:00:00Z")) == [datetime(2026, 1, 31)]
    # An offset is converted: 08:00 in UTC+8 is midnight UTC.
    assert since_of(accounts.audit_query(None, None, "2026-01-31T08:00:00+08:00")) == [datetime(2026, 1, 31)]
    assert since_of(accounts.audit_query("alice", "login", " 2026-01-31T00:00:00.5z ")) == \
        [datetime(2026, 1, 31, 0, 0, 0, 500000)]


def test_no_since_means_no_time_condition():
    for since in (None, ""):
        stmt = accounts.audit_query("alice", "login", since)
        assert since_of(stmt) == []
        assert set(stmt.compile().params.values()) == {"alice", "login"}
