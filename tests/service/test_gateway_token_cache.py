"""The gateway's cache of verified tokens, on real Redis (gateway/auth.py ``authenticate``).

A verified identity is cached under the token's hash for at most ``TOKEN_CACHE_SECONDS``
and never past the token's expiry; the cache write refuses a token whose revocation
tombstone exists; a blocked user is refused whether the identity came from the cache or
from the auth service. The gateway's RPC proxy to the auth service is stood in for by
``StandInAuth`` (it answers as the test tells it and counts the questions); everything
else — the Lua scripts, the keys, the TTLs — is the gateway's own code on a real Redis.
"""
from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from werkzeug.test import EnvironBuilder

from gateway import auth as gateway_auth
from services.auth.domain import sessions
from shared.errors import Forbidden, Unauthorized
from shared.redis import make_client
from shared.timeutil import parse_rfc3339, rfc3339, utcnow
from shared.tokens import new_token, token_hash


class StandInAuth:
    """Answers ``verify_token`` and ``is_blocked`` as the auth service would for the
    tokens and users the test set up, and keeps every question asked."""

    def __init__(self):
        self.identities: dict[str, dict] = {}
        self.revoked: set[str] = set()
        self.blocked: set[int] = set()
        self.verified: list[str] = []
        self.asked_blocked: list[int] = []

    def issue(self, user_id=4101, expires_in: timedelta | None = timedelta(days=90), scope="write",
              is_admin=False) -> str:
        secret = new_token("personal")
        expires = utcnow() + expires_in if expires_in is not None else None
        self.identities[secret] = {
            "user": {"id": user_id, "username": f"user-{user_id}", "display_name": "", "email": "",
                     "is_admin": is_admin},
            "token_id": len(self.identities) + 1, "kind": "personal", "scope": scope,
            "token_hash": token_hash(secret), "expires_at": rfc3339(expires)}
        return secret

    def verify_token(self, token):
        self.verified.append(token)
        identity = self.identities.get(token)
        if identity is None:
            raise Unauthorized("The token is not valid.")
        if token in self.revoked:
            raise Unauthorized("The token has been revoked.")
        if identity["expires_at"] and parse_rfc3339(identity["expires_at"]) <= utcnow():
            raise Unauthorized("The token has expired.")
        if identity["user"]["id"] in self.blocked:
            raise Unauthorized("Your account is blocked.")
        return identity

    def is_blocked(self, user_id):
        self.asked_blocked.append(user_id)
        return user_id in self.blocked


class Gateway:
    """What ``authenticate`` uses of the gateway service: its Redis, config and auth proxy."""

    def __init__(self, redis, config, auth):
        self.redis, self.config, self.auth = redis, config, auth


@pytest.fixture
def gateway(config, infra, redis_keys):
    client = make_client(infra.redis_url)
    yield Gateway(client, {**config, "REDIS_PREFIX": redis_keys.prefix}, StandInAuth())
    client.close()


def request(token: str | None, method="GET", authorization: str | None = None):
    headers = {"Authorization": authorization if authorization is not None else f"Bearer {token}"}
    return EnvironBuilder(path="/api/v1/apps", method=method, headers=headers,
                          environ_base={"REMOTE_ADDR": "10.1.2.3"}).get_request()


def cached(gateway, keys, token) -> tuple[dict | None, int]:
    """The cached identity of ``token`` and its remaining seconds (-2: no such key)."""
    key = keys.token(token_hash(token))
    value = gateway.redis.get(key)
    return (json.loads(value) if value else None), gateway.redis.ttl(key)


# -- for at most a minute, never past expiry ------------------------------------------------

def test_a_verified_token_is_answered_from_the_cache_for_at_most_a_minute(gateway, redis_keys):
    token = gateway.auth.issue(user_id=4101)
    caller = gateway_auth.authenticate(gateway, request(token))
    assert (caller.id, caller.username, caller.is_admin, caller.scope, caller.source_ip) == \
        (4101, "user-4101", False, "write", "10.1.2.3")
    identity, ttl = cached(gateway, redis_keys, token)
    assert identity == gateway.auth.identities[token]
    assert 0 < ttl <= gateway_auth.TOKEN_CACHE_SECONDS
    # Stored under the token's hash, never the token.
    assert not any(token in key for key in gateway.redis.scan_iter(match=f"{redis_keys.prefix}:*"))
    for _ in range(3):
        assert gateway_auth.authenticate(gateway, request(token)) == caller
    assert gateway.auth.verified == [token]


def test_a_token_that_never_expires_is_still_cached_for_a_minute_only(gateway, redis_keys):
    token = gateway.auth.issue(expires_in=None)
    gateway_auth.authenticate(gateway, request(token))
    _, ttl = cached(gateway, redis_keys, token)
    assert gateway_auth.TOKEN_CACHE_SECONDS - 2 <= ttl <= gateway_auth.TOKEN_CACHE_SECONDS


def test_a_token_is_never_answered_from_the_cache_past_its_expiry(gateway, redis_keys):
    token = gateway.auth.issue(expires_in=timedelta(seconds=3))
    gateway_auth.authenticate(gateway, request(token))
    _, ttl = cached(gateway, redis_keys, token)
    assert 0 < ttl <= 3
    expires = parse_rfc3339(gateway.auth.identities[token]["expires_at"])
    time.sleep(max(0.0, (expires - utcnow()).total_seconds()) + 0.3)
    with pytest.raises(Unauthorized) as caught:
        gateway_auth.authenticate(gateway, request(token))
    assert "expired" in caught.value.message
    assert gateway.auth.verified == [token, token]
    assert cached(gateway, redis_keys, token) == (None, -2)


def test_a_token_about_to_expire_is_not_cached_at_all(gateway, redis_keys):
    token = gateway.auth.issue(expires_in=timedelta(milliseconds=800))
    gateway_auth.authenticate(gateway, request(token))
    assert cached(gateway, redis_keys, token) == (None, -2)
    gateway_auth.authenticate(gateway, request(token))
    assert gateway.auth.verified == [token, token]


# -- revocation ----------------------------------------------------------------------------

def test_the_cache_write_refuses_a_token_whose_tombstone_exists(gateway, redis_keys):
    script = gateway_auth.cache_identity_script(gateway.redis)
    digest = token_hash(new_token("personal"))
    entry, tombstone = redis_keys.token(digest), redis_keys.token_revoked(digest)
    gateway.redis.set(tombstone, "1", ex=60)
    assert script(keys=[entry, tombstone], args=['{"user": {"id": 1}}', 60]) == 0
    assert gateway.redis.exists(entry) == 0
    gateway.redis.delete(tombstone)
    assert script(keys=[entry, tombstone], args=['{"user": {"id": 1}}', 60]) == 1
    assert gateway.redis.get(entry) == '{"user": {"id": 1}}' and 0 < gateway.redis.ttl(entry) <= 60


def test_a_check_in_flight_when_the_token_is_revoked_does_not_cache_it(gateway, redis_keys):
    """The auth service said "valid" just before the revocation committed; the revocation's
    tombstone is already there when the gateway writes the answer: it is not cached."""
    token = gateway.auth.issue()
    sessions.forget(gateway.redis, redis_keys, [token_hash(token)])
    gateway_auth.authenticate(gateway, request(token))  # the answer in flight still stands ...
    assert cached(gateway, redis_keys, token) == (None, -2)  # ... but is never served again
    gateway.auth.revoked.add(token)
    with pytest.raises(Unauthorized):
        gateway_auth.authenticate(gateway, request(token))


def test_a_revoked_token_stops_working_at_once_although_it_was_cached(gateway, redis_keys):
    token = gateway.auth.issue()
    gateway_auth.authenticate(gateway, request(token))
    assert cached(gateway, redis_keys, token)[0] is not None
    gateway.auth.revoked.add(token)  # the auth service commits the revocation, then forgets
    sessions.forget(gateway.redis, redis_keys, [token_hash(token)])
    with pytest.raises(Unauthorized) as caught:
        gateway_auth.authenticate(gateway, request(token))
    assert "revoked" in caught.value.message
    assert gateway.auth.verified == [token, token]


# -- blocked users -------------------------------------------------------------------------

def test_a_blocked_user_is_refused_from_the_mirror_cached_or_not(gateway, redis_keys):
    token = gateway.auth.issue(user_id=4102)
    gateway.redis.set(redis_keys.blacklist_loaded, "1", ex=60)
    gateway_auth.authenticate(gateway, request(token))  # cached now
    gateway.redis.sadd(redis_keys.blacklist, "4102")  # blocked after the identity was cached
    with pytest.raises(Unauthorized) as caught:
        gateway_auth.authenticate(gateway, request(token))
    assert "blocked" in caught.value.message
    gateway.redis.delete(redis_keys.token(token_hash(token)))  # and when it is not cached
    with pytest.raises(Unauthorized):
        gateway_auth.authenticate(gateway, request(token))
    assert gateway.auth.asked_blocked == []  # the mirror was complete: the auth service was not asked


def test_while_the_mirror_is_incomplete_the_auth_service_is_asked(gateway, redis_keys):
    token = gateway.auth.issue(user_id=4103)
    gateway.redis.sadd(redis_keys.blacklist, "4103")  # a partial mirror is not believed either way
    gateway_auth.authenticate(gateway, request(token))
    assert gateway.auth.asked_blocked == [4103]
    gateway.auth.blocked.add(4103)
    with pytest.raises(Unauthorized) as caught:
        gateway_auth.authenticate(gateway, request(token))  # from the cache, still asked
    assert "blocked" in caught.value.message
    assert gateway.auth.asked_blocked == [4103, 4103] and gateway.auth.verified == [token]


# -- what is not a token -------------------------------------------------------------------

@pytest.mark.parametrize("authorization", ["", "Bearer", "Bearer   ", "Basic dXNlcjpwdw==", "Token mae_p_x",
                                           "Bearer not-a-mae-token", "Bearer mae_short"])
def test_what_is_not_a_bearer_token_is_refused_without_asking_anyone(gateway, redis_keys, authorization):
    with pytest.raises(Unauthorized):
        gateway_auth.authenticate(gateway, request(None, authorization=authorization))
    assert gateway.auth.verified == [] and gateway.auth.asked_blocked == []
    assert list(gateway.redis.scan_iter(match=f"{redis_keys.prefix}:*")) == []


def test_an_unknown_token_is_refused_and_nothing_is_cached(gateway, redis_keys):
    token = new_token("personal")
    with pytest.raises(Unauthorized):
        gateway_auth.authenticate(gateway, request(token))
    assert cached(gateway, redis_keys, token) == (None, -2)


def test_a_read_only_token_may_look_but_not_change(gateway):
    token = gateway.auth.issue(scope="read")
    assert gateway_auth.authenticate(gateway, request(token, method="GET")).scope == "read"
    assert gateway_auth.authenticate(gateway, request(token, method="HEAD")).scope == "read"
    with pytest.raises(Forbidden) as caught:
        gateway_auth.authenticate(gateway, request(token, method="POST"))  # from the cache: still read-only
    assert caught.value.details == {"scope": "read"}
