"""Rate limits shared by every gateway replica through Redis: writes per user, login
starts per address.

Each user (found through the token's cached identity; a token not cached yet counts on
its own, keyed by its SHA-256, never the token itself) has a token bucket that
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

from shared.tokens import looks_like_token, token_hash
from shared.errors import RateLimited
from shared.keys import Keys
from shared.redis import make_client

log = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOGIN_START = "/api/v1/auth/login/"
USER_BUCKET = "writes:user:"
WRITES = "Too many changes by this account"
PENDING = "mae.rate_limit.pending"

# KEYS[1] bucket; ARGV[1] capacity, ARGV[2] refill per millisecond. With KEYS[2] (a
# token's cached identity) and ARGV[3] (a prefix), the bucket is the identity's user's
# (ARGV[3] .. user id) when the identity is cached: a person's tokens share one bucket.
# Returns {allowed (1/0), milliseconds until one more fits, whole tokens left}.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local bucket = KEYS[1]
if KEYS[2] then
  local cached = redis.call('GET', KEYS[2])
  local ok, identity = false, nil
  if cached then ok, identity = pcall(cjson.decode, cached) end
  if not (ok and type(identity) == 'table' and type(identity['user']) == 'table') then
    return {-1, 0, 0}  -- whose token is not known yet: counted once authentication knows
  end
  bucket = ARGV[3] .. tostring(identity['user']['id'])
end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', bucket, 'tokens', 'ts')
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
redis.call('HSET', bucket, 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', bucket, math.ceil(capacity / rate) + 1000)
return {allowed, wait, math.floor(tokens)}
"""


class Verdict:
    __slots__ = ("allowed", "retry_after", "remaining", "limit", "window", "pending")

    def __init__(self, allowed: bool, retry_after: int, remaining: int, limit: int, window: float,
                 pending: bool = False):
        self.allowed, self.retry_after, self.remaining = allowed, retry_after, remaining
        self.limit, self.window, self.pending = limit, window, pending

    def refusal(self, what: str) -> RateLimited:
        return RateLimited(f"{what}: at most {self.limit} per {self.window:g} s. "
                           f"Try again in {self.retry_after} s.",
                           {"limit": self.limit, "window_seconds": self.window, "retry_after": self.retry_after})


class WriteRateLimiter:
    """The bucket logic, usable without nameko (the gateway's dependency wraps it)."""

    def __init__(self, client, keys: Keys, limit: int, window_seconds: float):
        self.keys, self.limit, self.window = keys, int(limit), float(window_seconds)
        self._take = client.script(_TAKE)

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.window > 0

    def take(self, token: str) -> Verdict:
        """One write by ``token``, from its person's bucket (found through the token's cached
        identity), so minting tokens buys no extra writes. ``pending`` when the token is not
        cached yet: authentication then knows the person and calls ``take_user``."""
        return self.take_bucket(f"writes:{token_hash(token)}", identity_key=self.keys.token(token_hash(token)),
                                user_prefix=USER_BUCKET)

    def take_user(self, user_id: int) -> Verdict:
        return self.take_bucket(f"{USER_BUCKET}{user_id}")

    def take_bucket(self, bucket: str, identity_key: str | None = None, user_prefix: str = "") -> Verdict:
        rate = self.limit / (self.window * 1000.0)
        # Buckets are per limit: gateways configured alike share them, others never refill them.
        shape = f"{self.limit}/{self.window:g}:"
        keys = [self.keys.rate(shape + bucket)] + ([identity_key] if identity_key else [])
        args = [self.limit, repr(rate)] + ([self.keys.rate(shape + user_prefix)] if identity_key else [])
        allowed, wait_ms, left = self._take(keys=keys, args=args)
        if int(allowed) < 0:
            return Verdict(True, 0, 0, self.limit, self.window, pending=True)
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
        # Login starts write state to Redis for anyone who asks: a few per address per minute
        # is all a person needs (and every login also ends the person's oldest sessions
        # beyond MAX_SESSIONS, so a flood of logins to one account cannot pile up sessions).
        self.logins = WriteRateLimiter(self.client, Keys.from_config(config),
                                       int(config.get("LOGIN_RATE_LIMIT", 20) or 0),
                                       float(config.get("LOGIN_RATE_WINDOW_SECONDS", 60) or 0))

    def stop(self):
        self.client.close()

    def get_dependency(self, worker_ctx):
        return self.limiter

    def guard_request(self, request):
        """None to go on, or the 429 response."""
        from shared.web import response_for_error

        if request.method == "GET" and request.path.startswith(LOGIN_START) and self.logins.enabled:
            verdict = _verdict(lambda: self.logins.take_bucket(f"login:{request.remote_addr or '-'}"))
            what = "Too many logins started from this address"
        elif request.method in WRITE_METHODS and self.limiter.enabled and bearer_token(request):
            verdict = _verdict(lambda: self.limiter.take(bearer_token(request)))
            what = WRITES
            if verdict is not None and verdict.pending:
                request.environ[PENDING] = True  # gateway.auth counts it once it knows whose
        else:
            return None
        if verdict is None or verdict.allowed:
            return None
        return response_for_error(verdict.refusal(what))


def _verdict(take) -> Verdict | None:
    try:
        return take()
    except Exception as exc:  # noqa: BLE001 - a limiter outage must not become an API outage
        log.warning("rate limit not checked, Redis did not answer: %r", exc)
        return None


def count_pending_write(limiter: WriteRateLimiter, request, user_id: int) -> None:
    """A write whose token was not known to the guard counts now, on its person's bucket;
    RateLimited (429) past the limit. A limiter outage lets it through."""
    if not request.environ.pop(PENDING, False):
        return
    verdict = _verdict(lambda: limiter.take_user(user_id))
    if verdict is not None and not verdict.allowed:
        raise verdict.refusal(WRITES)
