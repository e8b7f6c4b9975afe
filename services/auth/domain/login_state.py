"""What a login in progress keeps in Redis between its start and the provider's callback.

Plain functions over a Redis client, no nameko. The state (the OAuth ``state`` value)
names a hash with the provider, the PKCE verifier, the OIDC nonce and the console's own
state; it lives ``STATE_TTL_SECONDS`` and is read and deleted in one step, so a replayed
callback finds nothing. OIDC nonces are remembered once used, shared by every replica.
"""
from __future__ import annotations

import hashlib

from shared.errors import BadRequest
from shared.keys import Keys

STATE_TTL_SECONDS = 600


class LoginRefused(BadRequest):
    """A login callback refused before any provider was asked. ``message`` is for the person;
    ``audit_reason`` is what the ``login_failed`` audit entry says. It does not cross RPC:
    the auth service audits it and answers a plain ``BadRequest`` with the same message."""

    def __init__(self, message: str, audit_reason: str):
        super().__init__(message)
        self.audit_reason = audit_reason


def save(redis, keys: Keys, request, provider: str, console_state: str | None) -> None:
    """Keep what the callback of ``request`` (an authorization request) will need."""
    saved = {"provider": provider, "code_verifier": request.code_verifier}
    if console_state:  # handed back with the token: the console takes only logins it started
        saved["console_state"] = console_state
    if request.nonce:  # OIDC: the ID token must carry it back, once
        saved["nonce"] = request.nonce
    pipe = redis.pipeline(transaction=True)
    pipe.hset(keys.oauth_state(request.state), mapping=saved)
    pipe.expire(keys.oauth_state(request.state), STATE_TTL_SECONDS)
    pipe.execute()


def take(redis, keys: Keys, provider: str, state: str) -> dict:
    """The saved login for ``state``, used up; ``LoginRefused`` when it is unknown, expired,
    reused or another provider's."""
    pipe = redis.pipeline(transaction=True)
    pipe.hgetall(keys.oauth_state(state))
    pipe.delete(keys.oauth_state(state))
    saved, _ = pipe.execute()
    if not saved:
        raise LoginRefused("This login link is unknown, expired or already used; start the login again.",
                           "unknown, expired or reused state")
    if saved["provider"] != provider:
        raise LoginRefused("This login was started with another provider; start the login again.",
                           "state issued for another provider")
    return saved


class RedisNonces:
    """OIDC nonces seen, shared by every replica: a replayed ID token is refused."""

    def __init__(self, redis, keys: Keys):
        self.redis, self.prefix = redis, f"{keys.prefix}:oauth:nonce:"

    def claim(self, nonce: str, ttl: int) -> bool:
        digest = hashlib.sha256(nonce.encode()).hexdigest()
        return bool(self.redis.set(self.prefix + digest, "1", nx=True, ex=max(int(ttl), 1)))
