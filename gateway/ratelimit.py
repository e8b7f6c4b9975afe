"""A rate limit per token on writes, shared by every gateway replica through Redis.

Each token (keyed by its SHA-256, never the token itself) has a token bucket that
holds at most ``RATE_LIMIT_WRITES`` requests and refills at that many per
``RATE_LIMIT_WINDOW_SECONDS``: a person clicking through the console, or a script
with a short burst, never notices it; a runaway loop is slowed to the refill rate.
The check is one round trip (EVALSHA of a Lua script that refills the bucket by the
time elapsed on Redis's own clock, takes one and says how long until the next would
fit), so replicas agree without talking to each other and clock skew between them
does not matter. Reads (GET, HEAD, OPTIONS) and requests without a bearer token are
never limited; the latter are refused by authentication anyway, or carry their own
signature (the CI webhook).

A refusal is 429 with ``Retry-After`` (whole seconds) and the API's JSON error body.
If Redis does not answer, the request is let through: authentication, which needs
Redis too, will report the outage properly.
"""
from __future__ import annotations

import logging
import math

from nameko.extensions import DependencyProvider

from services.auth.domain.tokens import looks_like_token, token_hash
from shared.keys import Keys
from shared.redis import make_client

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# KEYS[1] bucket; ARGV[1] capacity, ARGV[2] refill per millisecond.
# Returns {allowed (1/0), milliseconds until one more fits, whole tokens left}.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed, wait = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
return {allowed, wait, math.floor(tokens)}
"""


class Verdict:
    __slots__ = ("allowed", "retry_after", "remaining", "limit", "window")

    def __init__(self, allowed: bool, retry_after: int, remaining: int, limit: int, window: float):
        self.allowed, self.retry_after, self.remaining = allowed, retry_after, remaining
        self.limit, self.window = limit, window


class WriteRateLimiter:
    """The bucket logic, usable without nameko (the gateway's dependency wraps it)."""

    def __init__(self, client, keys: Keys, limit: int, window_seconds: float):
        self.keys, self.limit, self.window = keys, int(limit), float(window_seconds)
        self._take = client.register_script(_TAKE)

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.window > 0

    def take(self, token: str) -> Verdict:
        rate = self.limit / (self.window * 1000.0)
        allowed, wait_ms, left = self._take(keys=[self.keys.rate(f"writes:{token_hash(token)}")],
                                            args=[self.limit, repr(rate)])
        return Verdict(bool(allowed), max(1, math.ceil(int(wait_ms) / 1000)) if not allowed else 0,
                       int(left), self.limit, self.window)


def bearer_token(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not looks_like_token(token):
        return None
    return token


class WriteRateLimit(DependencyProvider):
    """Nameko side: ``shared.web`` asks every dependency with ``guard_request`` before
    it dispatches a request, so a limited write costs no worker and no RPC."""

    def setup(self):
        config = self.container.config
        self.client = make_client(config["REDIS_URL"])
        self.limiter = WriteRateLimiter(self.client, Keys.from_config(config),
                                        int(config.get("RATE_LIMIT_WRITES", 600) or 0),
                                        float(config.get("RATE_LIMIT_WINDOW_SECONDS", 60) or 0))

    def stop(self):
        self.client.close()

    def get_dependency(self, worker_ctx):
        return self.limiter

    def guard_request(self, request):
        """None to go on, or the 429 response."""
        from shared.web import error_response

        if request.method not in WRITE_METHODS or not self.limiter.enabled:
            return None
        token = bearer_token(request)
        if token is None:
            return None
        try:
            verdict = self.limiter.take(token)
        except Exception as exc:  # noqa: BLE001 - a limiter outage must not become an API outage
            log.warning("rate limit not checked, Redis did not answer: %r", exc)
            return None
        if verdict.allowed:
            return None
        return error_response(
            429, "rate_limited",
            f"Too many changes with this token: at most {verdict.limit} per {verdict.window:g} s. "
            f"Try again in {verdict.retry_after} s.",
            {"limit": verdict.limit, "window_seconds": verdict.window, "retry_after": verdict.retry_after},
            {"Retry-After": str(verdict.retry_after)})
