"""The auth domain's state on real MariaDB and Redis (services/auth/domain/sessions.py,
login_state.py): which sessions are past a person's limit, ending tokens (marked, then
tombstoned and dropped from the gateways' cache), and logins in progress, used once.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.auth.domain import login_state, sessions
from services.auth.domain.oauth import GenericOAuth2Provider
from services.auth.models import Token, User
from shared.errors import BadRequest, NotFound
from shared.tokens import new_token, token_hash
from shared.timeutil import utcnow


# -- sessions on MariaDB -------------------------------------------------------------------

def user(db) -> User:
    name = "s-" + uuid.uuid4().hex[:12]
    person = User(username=name, username_key=name)
    db.add(person)
    db.flush()
    return person


def token(db, owner: User, kind="session", expires_in=timedelta(days=1), revoked=False) -> Token:
    secret = new_token(kind)
    row = Token(user_id=owner.id, kind=kind, token_hash=token_hash(secret), prefix=secret[:10],
                expires_at=utcnow() + expires_in if expires_in is not None else None,
                revoked_at=utcnow() if revoked else None)
    db.add(row)
    db.flush()
    return row


def test_the_sessions_beyond_the_limit_are_the_oldest_live_ones(db_session):
    alice, bob = user(db_session), user(db_session)
    live = [token(db_session, alice) for _ in range(5)]
    token(db_session, alice, revoked=True)
    token(db_session, alice, expires_in=timedelta(seconds=-1))
    token(db_session, alice, kind="personal")
    token(db_session, alice, expires_in=None, kind="personal")
    token(db_session, bob)
    beyond = sessions.beyond_limit(db_session, alice.id, 2)
    assert [t.id for t in beyond] == [t.id for t in reversed(live[:3])]
    assert sessions.beyond_limit(db_session, alice.id, 5) == []
    assert sessions.beyond_limit(db_session, bob.id, 1) == []


def test_no_limit_ends_no_session(db_session):
    alice = user(db_session)
    for _ in range(3):
        token(db_session, alice)
    assert sessions.beyond_limit(db_session, alice.id, 0) == []
    assert sessions.beyond_limit(db_session, alice.id, -1) == []


def test_revoked_sessions_are_no_longer_counted(db_session):
    alice = user(db_session)
    live = [token(db_session, alice) for _ in range(4)]
    hashes = sessions.revoke(sessions.beyond_limit(db_session, alice.id, 1))
    assert hashes == [t.token_hash for t in reversed(live[:3])]
    assert sessions.beyond_limit(db_session, alice.id, 1) == []
    assert [t.id for t in db_session.scalars(sessions.live_sessions(alice.id))] == [live[3].id]


def test_a_person_may_end_only_a_live_session_of_their_own(db_session):
    alice, bob = user(db_session), user(db_session)
    mine = token(db_session, alice)
    assert sessions.owned_session(db_session, alice.id, mine.id) is mine
    personal = token(db_session, alice, kind="personal")
    ended = token(db_session, alice, revoked=True)
    for who, session_id in [(bob.id, mine.id), (alice.id, personal.id), (alice.id, ended.id),
                            (alice.id, str(mine.id)), (alice.id, None), (alice.id, 10**15)]:
        with pytest.raises(NotFound):
            sessions.owned_session(db_session, who, session_id)


def test_a_session_is_shown_with_whether_it_is_the_callers_own(db_session):
    alice = user(db_session)
    one, other = token(db_session, alice), token(db_session, alice)
    shown = sessions.session_dict(one, current_id=one.id)
    assert shown["current"] is True and shown["id"] == one.id and shown["expires_at"].endswith("Z")
    assert sessions.session_dict(other, current_id=one.id)["current"] is False


# -- forgetting ended tokens in Redis ----------------------------------------------------------

def test_forgetting_tombstones_first_and_drops_the_cached_answers(redis_client, redis_keys):
    ended, untouched = "a" * 64, "b" * 64
    for digest in (ended, untouched):
        redis_client.set(redis_keys.token(digest), '{"user": {"id": 1}}', ex=60)
    sessions.forget(redis_client, redis_keys, [ended])
    assert redis_client.get(redis_keys.token(ended)) is None
    assert redis_client.get(redis_keys.token_revoked(ended)) == "1"
    assert 0 < redis_client.ttl(redis_keys.token_revoked(ended)) <= sessions.TOMBSTONE_SECONDS
    assert redis_client.get(redis_keys.token(untouched)) is not None
    assert redis_client.get(redis_keys.token_revoked(untouched)) is None


def test_forgetting_nothing_writes_nothing(redis_client, redis_keys):
    sessions.forget(redis_client, redis_keys, [])
    assert list(redis_client.scan_iter(match=f"{redis_keys.prefix}:*")) == []


# -- logins in progress --------------------------------------------------------------------

def provider(name="team"):
    return GenericOAuth2Provider(name, {"client_id": "mae", "authorize_url": "https://sso.example.com/authorize",
                                        "token_url": "https://sso.example.com/token"},
                                 "https://mae.example.com/api/v1/auth/callback")


def test_a_saved_login_is_taken_back_once(redis_client, redis_keys):
    request = provider().authorization_request()
    login_state.save(redis_client, redis_keys, request, "team", "console-7f3a")
    assert 0 < redis_client.ttl(redis_keys.oauth_state(request.state)) <= login_state.STATE_TTL_SECONDS
    saved = login_state.take(redis_client, redis_keys, "team", request.state)
    assert saved == {"provider": "team", "code_verifier": request.code_verifier, "console_state": "console-7f3a"}
    # A replayed callback finds nothing.
    with pytest.raises(login_state.LoginRefused) as caught:
        login_state.take(redis_client, redis_keys, "team", request.state)
    assert caught.value.audit_reason == "unknown, expired or reused state"


def test_what_a_login_keeps_is_only_what_it_has(redis_client, redis_keys):
    plain = provider().authorization_request()
    login_state.save(redis_client, redis_keys, plain, "team", None)
    assert login_state.take(redis_client, redis_keys, "team", plain.state) == \
        {"provider": "team", "code_verifier": plain.code_verifier}
    oidc = provider().authorization_request()
    oidc.nonce = "n-" + uuid.uuid4().hex  # what an OIDC provider's request carries
    login_state.save(redis_client, redis_keys, oidc, "team", "")
    assert login_state.take(redis_client, redis_keys, "team", oidc.state)["nonce"] == oidc.nonce


def test_a_login_started_with_another_provider_is_refused_and_used_up(redis_client, redis_keys):
    request = provider("github").authorization_request()
    login_state.save(redis_client, redis_keys, request, "github", None)
    with pytest.raises(login_state.LoginRefused) as caught:
        login_state.take(redis_client, redis_keys, "team", request.state)
    assert caught.value.audit_reason == "state issued for another provider"
    with pytest.raises(BadRequest):  # the right provider cannot use it afterwards either
        login_state.take(redis_client, redis_keys, "github", request.state)


def test_an_unknown_state_is_refused(redis_client, redis_keys):
    with pytest.raises(login_state.LoginRefused) as caught:
        login_state.take(redis_client, redis_keys, "team", "never-issued")
    assert caught.value.audit_reason == "unknown, expired or reused state"


def test_an_oidc_nonce_is_claimed_once_across_replicas(redis_client, redis_keys, infra):
    from shared.redis import make_client

    nonce = "n-" + uuid.uuid4().hex
    other_replica = make_client(infra.redis_url)
    try:
        assert login_state.RedisNonces(redis_client, redis_keys).claim(nonce, 300) is True
        assert login_state.RedisNonces(other_replica, redis_keys).claim(nonce, 300) is False
        assert login_state.RedisNonces(other_replica, redis_keys).claim(nonce + "x", 0) is True  # ttl ≥ 1 s
    finally:
        other_replica.close()
    stored = list(redis_client.scan_iter(match=f"{redis_keys.prefix}:oauth:nonce:*"))
    assert len(stored) == 2 and not any(nonce in key for key in stored)  # kept hashed
