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
from typing import Callable
from datetime import datetime, timezone

from redis.exceptions import RedisError

from gateway.rbac import allowed
from gateway.ratelimit import count_pending_write
from shared.tokens import looks_like_token, token_hash
from shared.errors import Forbidden, NotFound, Unauthorized
from shared.keys import Keys
from shared.names import is_label
from shared.roles import ADMIN

log = logging.getLogger(__name__)

TOKEN_CACHE_SECONDS = 60

# One round trip for the common case: the cached identity, whether the blacklist
# mirror is complete, and whether the identity's user is on it; asked for a
# per-user cache entry (ARGV: member generation prefix, entry key prefix, suffix
# for admins, suffix for others), also that entry and the generations it must carry.
_LOOKUP = """
local cached = redis.call('GET', KEYS[1])
local loaded = redis.call('EXISTS', KEYS[3])
if not cached then return {'', loaded, 0} end
local user = cjson.decode(cached)['user']
local uid = tostring(user['id'])
local blocked = redis.call('SISMEMBER', KEYS[2], uid)
if #ARGV == 0 then return {cached, loaded, blocked} end
local admin = user['is_admin'] == true or user['is_admin'] == 1
local entry = ARGV[2] .. uid .. (admin and ARGV[3] or ARGV[4])
return {cached, loaded, blocked, redis.call('GET', KEYS[4]) or '', redis.call('GET', ARGV[1] .. uid) or '',
        redis.call('GET', entry) or ''}
"""
# Cache a verified identity unless the token was revoked meanwhile (its tombstone, see
# services/auth/domain/sessions.py): a check in flight cannot bring a revoked token back.
_CACHE_IDENTITY = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_USER = "\x00"  # stands for the user id in a key while it is not known yet
ROLE_CACHE_SECONDS = 120
NO_ROLE, NO_APP = "-", "!"


@dataclass(frozen=True)
class Caller:
    id: int
    username: str
    is_admin: bool
    source_ip: str
    token_id: int | None = None
    scope: str = "write"

    @property
    def actor(self) -> dict:
        """How services are told who acts."""
        return {"id": self.id, "username": self.username, "is_admin": self.is_admin}


def _keys(service) -> Keys:
    return Keys.from_config(service.config)


def source_ip(request) -> str:
    return request.remote_addr or ""


@dataclass(frozen=True)
class PerUserKey:
    """The key of a per-user cache entry before the caller is known."""
    make: Callable[[object, bool], str]  # (user id, is admin) → key

    def key(self, caller: Caller) -> str:
        return self.make(caller.id, caller.is_admin)

    def parts(self) -> tuple[str, str, str] | None:
        """(prefix, suffix for admins, suffix for others) around the user id, if it splits so."""
        admin, member = self.make(_USER, True).split(_USER), self.make(_USER, False).split(_USER)
        if len(admin) != 2 or len(member) != 2 or admin[0] != member[0]:
            return None
        return admin[0], admin[1], member[1]


def authenticate(service, request) -> Caller:
    return _authenticate(service, request, None)[0]


def authenticate_with(service, request, entry: PerUserKey) -> tuple[Caller, str | None, str | None]:
    """The caller and ``(tag, value)`` of their cache ``entry`` (see ``tagged_read``):
    one Redis round trip for both when the token is cached."""
    return _authenticate(service, request, entry)


def _authenticate(service, request, entry: PerUserKey | None):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Log in first: send 'Authorization: Bearer <token>'.")
    token = token.strip()
    if not looks_like_token(token):
        raise Unauthorized("The token is not valid.")
    keys = _keys(service)
    digest = token_hash(token)
    lookup = service.redis.script(_LOOKUP)
    parts = entry.parts() if entry is not None else None
    args = [keys.member_generation(""), *parts] if parts else []
    redis_up, reply = True, []
    try:
        reply = lookup(keys=[keys.token(digest), keys.blacklist, keys.blacklist_loaded, keys.apps_generation],
                       args=args)
        cached, mirror_loaded, blocked = reply[:3]
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
            _quietly(cache_identity_script(service.redis), keys=[keys.token(digest), keys.token_revoked(digest)],
                     args=[json.dumps(identity), ttl])
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
    caller = Caller(id=user["id"], username=user["username"], is_admin=bool(user["is_admin"]),
                    source_ip=source_ip(request), token_id=identity.get("token_id"),
                    scope=identity.get("scope") or "write")
    if caller.scope != "write" and request.method not in READ_METHODS:
        raise Forbidden("This token is read-only (scope 'read'): it may only look, not change anything.",
                        {"scope": caller.scope})
    limiter = getattr(service, "rate_limit", None)
    if limiter is not None:
        count_pending_write(limiter, request, caller.id)
    if entry is None:
        return caller, None, None
    if len(reply) == 6 and reply[3] and reply[4]:
        tag = f"{reply[3]}.{reply[4]}"
        return caller, tag, _current(reply[5], tag)
    if not redis_up:
        return caller, None, None
    return (caller, *tagged_read(service, caller.id, entry.key(caller)))


def cache_identity_script(client):
    """The cache write that refuses a revoked token's identity (``_CACHE_IDENTITY``)."""
    return client.script(_CACHE_IDENTITY)


def require_admin(service, request) -> Caller:
    caller = authenticate(service, request)
    if not caller.is_admin:
        raise Forbidden("Only a platform administrator may do this.")
    return caller


def role_key(service, app: str) -> PerUserKey:
    keys = _keys(service)
    return PerUserKey(lambda user_id, is_admin: keys.role(app, user_id))


def app_role(service, caller: Caller, app: str, tag: str | None, cached: str | None) -> str | None:
    """The caller's role in ``app`` (``"admin"`` for admins); NotFound if the app is absent.

    ``(tag, cached)`` is what ``tagged_read`` gave for ``role_key``."""
    if not is_label(app):
        # MariaDB compares names case-insensitively: 'SHOP' would find 'shop', and its
        # answer would be cached under a key no membership change ever clears.
        raise NotFound(f"Application {app!r} was not found.", {"app": app})
    if cached is None:
        answer = service.org.role_of(app, caller.id)
        cached = NO_APP if not answer["exists"] else (answer["role"] or NO_ROLE)
        tagged_write(service, role_key(service, app).key(caller), tag, cached, ROLE_CACHE_SECONDS)
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
    return tag, _current(entry, tag)


def _current(entry: str | None, tag: str) -> str | None:
    """The entry's value if it was stored under ``tag``."""
    if entry:
        entry_tag, _, value = entry.partition("\n")
        if entry_tag == tag:
            return value
    return None


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
    caller, tag, cached = authenticate_with(service, request, role_key(service, app))
    role = app_role(service, caller, app, tag, cached)
    if role is None:
        # Not a member: to them the application does not exist.
        raise NotFound(f"Application {app!r} was not found.", {"app": app})
    if not allowed(endpoint, role):
        raise Forbidden(f"Your role in {app!r} ({role}) does not allow this.",
                        {"app": app, "role": role})
    return caller, role
