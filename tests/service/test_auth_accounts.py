"""Accounts on MariaDB (services/auth/domain/accounts.py): who a login is (provider and
subject, never the name a provider suggests), the bootstrap administrator's one bound
identity, and what ``verify`` says of a token. Each test runs in a transaction rolled
back afterwards (``db_session``)."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.auth.domain import accounts
from services.auth.domain.oauth import ProviderUser
from services.auth.models import BlacklistEntry, Identity
from shared.errors import Unauthorized
from shared.timeutil import utcnow


def person(name: str, subject: str | None = None, email: str = "") -> ProviderUser:
    return ProviderUser(subject=subject or "sub-" + uuid.uuid4().hex, username=name, display_name=name.title(),
                        email=email or f"{name}@example.com")


@pytest.fixture
def bootstrap():
    """A bootstrap account of this test's own name, bound to one identity at ``team``."""
    return accounts.Bootstrap(username="boss-" + uuid.uuid4().hex[:8], provider="team",
                              subject="sub-boss-" + uuid.uuid4().hex)


def test_a_first_login_makes_a_plain_account_and_the_next_finds_it(db_session, bootstrap):
    name = "ada" + uuid.uuid4().hex[:6]
    who = person(name)
    first = accounts.login(db_session, "team", who, bootstrap)
    assert (first.username, first.is_admin, first.email) == (name, False, f"{name}@example.com")
    again = accounts.login(db_session, "team", person(name, who.subject, email="new@example.com"), bootstrap)
    assert again.id == first.id and again.email == "new@example.com"   # refreshed, not a new account


def test_the_same_name_at_another_identity_is_another_person_with_a_suffix(db_session, bootstrap):
    name = "bob" + uuid.uuid4().hex[:6]
    first = accounts.login(db_session, "team", person(name), bootstrap)
    other = accounts.login(db_session, "github", person(name.upper()), bootstrap)
    assert other.id != first.id and other.username == f"{name}-2"


def test_a_reserved_or_the_bootstrap_name_is_never_given_as_it_is(db_session, bootstrap):
    assert accounts.login(db_session, "team", person("root"), bootstrap).username != "root"
    claimed = accounts.login(db_session, "team", person(bootstrap.username), bootstrap)
    assert claimed.username == f"{bootstrap.username}-2" and not claimed.is_admin


def test_only_the_bound_identity_reaches_the_bootstrap_account(db_session, bootstrap):
    admin = accounts.login(db_session, "team", person("anyone", bootstrap.subject), bootstrap)
    assert admin.username == bootstrap.username and admin.is_admin
    assert accounts.login(db_session, "github", person("x", bootstrap.subject), bootstrap).id != admin.id


def test_an_identity_attached_to_the_admin_under_an_older_binding_is_detached(db_session, bootstrap):
    admin = accounts.ensure_bootstrap(db_session, bootstrap)
    stray = person("stray" + uuid.uuid4().hex[:6])
    db_session.add(Identity(user_id=admin.id, provider="team", subject=stray.subject))
    db_session.flush()
    user = accounts.login(db_session, "team", stray, bootstrap)
    assert user.id != admin.id and not user.is_admin


def test_verify_says_why_a_token_is_refused(db_session, bootstrap):
    user = accounts.login(db_session, "team", person("eve" + uuid.uuid4().hex[:6]), bootstrap)
    live, secret = accounts.issue_token(db_session, user, "personal", "ci", utcnow() + timedelta(days=1))
    assert accounts.verify(db_session, secret) == (live, user) and live.last_used_at is not None
    with pytest.raises(Unauthorized, match="not valid"):
        accounts.verify(db_session, secret + "x")
    _, ended = accounts.issue_token(db_session, user, "session", "", utcnow() - timedelta(seconds=1))
    with pytest.raises(Unauthorized, match="session has expired"):
        accounts.verify(db_session, ended)
    live.revoked_at = utcnow()
    with pytest.raises(Unauthorized, match="revoked"):
        accounts.verify(db_session, secret)
    _, other = accounts.issue_token(db_session, user, "personal", "other")
    db_session.add(BlacklistEntry(user_id=user.id, username=user.username))
    db_session.flush()
    with pytest.raises(Unauthorized, match="blocked"):
        accounts.verify(db_session, other)
