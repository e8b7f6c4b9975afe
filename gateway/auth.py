"""Who is calling, and may they? Authentication and RBAC for every route.

``authenticate`` turns the bearer token into a ``Caller``. A verified token is
cached in Redis by its hash (never the token itself) for at most a minute and
never past its expiry; revoking a token deletes that entry. The blacklist is
checked on every request against the Redis set the auth service mirrors from
MySQL, so a block takes effect at once on every gateway replica; while the
mirror is not known to be complete, the auth service is asked instead.

RBAC answers (and ``GET /apps`` pages, see ``gateway/routes/apps.py``) are
cached per user, each tagged with the generations org bumps when applications
or the user's memberships change (``shared.keys``). The tag is read before the
answer is asked for, so an answer read from rows that changed meanwhile is
stored under a generation that is already gone and never served.

Redis is a cache here, never the truth: when it cannot be reached, the same
answers come from the services over RPC (slower, still right).
"""
from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from redis.exceptions import RedisError

from gateway.rbac import allowed
from services.auth.domain.tokens import looks_like_token, token_hash
from shared.errors import Forbidden, NotFound, Unauthorized
from shared.keys import Keys
from shared.roles import ADMIN

log = logging.getLogger(__name__)

TOKEN_CACHE_SECONDS = 60

# One round trip for the common case: the cached identity, whether the blacklist
# mirror is complete, and whether the identity's user is on it.
_LOOKUP = """
local cached = redis.call('GET', KEYS[1])
local loaded = redis.call('EXISTS', KEYS[3])
if not cached then return {'', loaded, 0} end
local uid = cjson.decode(cached)['user']['id']
return {cached, loaded, redis.call('SISMEMBER', KEYS[2], tostring(uid))}
"""
ROLE_CACHE_SECONDS = 120
NO_ROLE, NO_APP = "-", "!"


@dataclass(frozen=True)
class Caller:
    id: int
    username: str
    is_admin: bool
    source_ip: str

    @property
    def actor(self) -> dict:
        """How services are told who acts."""
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


def _keys(service) -> Keys:
    return Keys.from_config(service.config)


def source_ip(request) -> str:
    return request.remote_addr or ""


def authenticate(service, request) -> Caller:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Log in first: send 'Authorization: Bearer <token>'.")
    token = token.strip()
    if not looks_like_token(token):
        raise Unauthorized("The token is not valid.")
    keys = _keys(service)
    digest = token_hash(token)
    lookup = getattr(service.redis, "_mae_token_lookup", None)
    if lookup is None:  # registered once per client: EVALSHA after the first call
        lookup = service.redis._mae_token_lookup = service.redis.register_script(_LOOKUP)
    redis_up = True
    try:
        cached, mirror_loaded, blocked = lookup(keys=[keys.token(digest), keys.blacklist, keys.blacklist_loaded])
    except RedisError as exc:
        _cache_down(exc)
        redis_up, cached, mirror_loaded, blocked = False, None, 0, 0  # ask auth for both answers
    if cached:
        identity = json.loads(cached)
    else:
        identity = service.auth.verify_token(token)
        ttl = TOKEN_CACHE_SECONDS
        if identity.get("expires_at"):
            expires = datetime.fromisoformat(identity["expires_at"].replace("Z", "+00:00"))
            ttl = min(ttl, int((expires - datetime.now(timezone.utc)).total_seconds()))
        if ttl > 0 and redis_up:
            _quietly(service.redis.set, keys.token(digest), json.dumps(identity), ex=ttl)
    user = identity["user"]
    if mirror_loaded and not cached:
        try:
            blocked = service.redis.sismember(keys.blacklist, str(user["id"]))
        except RedisError as exc:
            _cache_down(exc)
            mirror_loaded = 0
    if not mirror_loaded:
        blocked = service.auth.is_blocked(user["id"])
    if blocked:
        raise Unauthorized("Your account is blocked.")
    return Caller(id=user["id"], username=user["username"], is_admin=bool(user["is_admin"]),
                  source_ip=source_ip(request))


def require_admin(service, request) -> Caller:
    caller = authenticate(service, request)
    if not caller.is_admin:
        raise Forbidden("Only a platform administrator may do this.")
    return caller


def app_role(service, caller: Caller, app: str) -> str | None:
    """The caller's role in ``app`` (``"admin"`` for admins); NotFound if the app is absent."""
    key = _keys(service).role(app, caller.id)
    tag, cached = tagged_read(service, caller.id, key)
    if cached is None:
        answer = service.org.role_of(app, caller.id)
        cached = NO_APP if not answer["exists"] else (answer["role"] or NO_ROLE)
        tagged_write(service, key, tag, cached, ROLE_CACHE_SECONDS)
    if cached == NO_APP:
        raise NotFound(f"Application {app!r} was not found.", {"app": app})
    if caller.is_admin:
        return ADMIN
    return None if cached == NO_ROLE else cached


def tagged_read(service, user_id: int, key: str) -> tuple[str | None, str | None]:
    """``(tag, value)`` of a per-user cache entry, in one round trip.

    ``value`` is None unless the entry was stored under the current generations;
    ``tag`` is what a fresh answer, read from now on, is to be stored under
    (None when Redis cannot be reached: then nothing is stored).
    """
    keys = _keys(service)
    generations = [keys.apps_generation, keys.member_generation(user_id)]
    try:
        *current, entry = service.redis.mget(*generations, key)
        if None in current:
            # Never bumped, or lost with Redis: start from a random generation, so a
            # lost counter cannot come back to a value an old entry was tagged with.
            pipe = service.redis.pipeline(transaction=False)
            for name, value in zip(generations, current):
                if value is None:
                    pipe.set(name, secrets.randbits(52), nx=True)
            pipe.mget(*generations)
            current, entry = pipe.execute()[-1], None
    except RedisError as exc:
        _cache_down(exc)
        return None, None
    tag = ".".join(current)
    if entry is not None:
        entry_tag, _, value = entry.partition("\n")
        if entry_tag == tag:
            return tag, value
    return tag, None


def tagged_write(service, key: str, tag: str | None, value: str, seconds: int) -> None:
    if tag is not None:
        _quietly(service.redis.set, key, f"{tag}\n{value}", ex=seconds)


def _cache_down(exc: Exception) -> None:
    log.warning("Redis unreachable, answering from the services instead: %s", exc)


def _quietly(command, *args, **kwargs) -> None:
    """A cache write that may fail: the answer stands without it."""
    try:
        command(*args, **kwargs)
    except RedisError as exc:
        _cache_down(exc)


def require_app_role(service, request, app: str, endpoint: str) -> tuple[Caller, str]:
    """The caller and their role, if the RBAC table lets them call ``endpoint`` in ``app``."""
    caller = authenticate(service, request)
    role = app_role(service, caller, app)
    if role is None:
        # Not a member: to them the application does not exist.
        raise NotFound(f"Application {app!r} was not found.", {"app": app})
    if not allowed(endpoint, role):
        raise Forbidden(f"Your role in {app!r} ({role}) does not allow this.",
                        {"app": app, "role": role})
    return caller, role
