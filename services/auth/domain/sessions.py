"""Login sessions and personal tokens: what a person holds, and ending it.

Plain SQLAlchemy and Redis, no nameko; the caller commits.

Ending a token is two steps: the row is marked revoked (the truth), then every
gateway's cache of it is dropped. A gateway may have read the token as valid just
before the commit and be about to cache that answer; so the second step first
leaves a *tombstone* (``Keys.token_revoked``) that the gateways' cache write checks
atomically (``gateway/auth.py``), then deletes the cached entry. Whichever of the
two writes comes second, the revoked token is never served from the cache.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.auth.models import Token
from shared.errors import Forbidden, Invalid, NotFound
from shared.keys import Keys
from shared.timeutil import rfc3339, utcnow

MAX_TOKEN_DAYS = 3650
DEFAULT_TOKEN_DAYS = 90
SCOPES = ("read", "write")
# Longer than any verify round trip can take (RPC timeouts are far shorter), so a check
# in flight when a token is revoked always meets the tombstone.
TOMBSTONE_SECONDS = 600
DEVICE_CHARS = 200


def scope_of(scope) -> str:
    if scope is None:
        return "write"
    if scope not in SCOPES:
        raise Invalid("'scope' must be 'read' (GET requests only) or 'write'.", {"field": "scope"})
    return scope


def personal_expiry(expires_in_days, is_admin: bool, default_days: int = DEFAULT_TOKEN_DAYS,
                    now: datetime | None = None) -> datetime | None:
    """When a new personal token ends: ``default_days`` unless asked; ``0`` (never) is
    for administrators only (a forgotten token of theirs is theirs to answer for)."""
    now = now or utcnow()
    if expires_in_days is None:
        return now + timedelta(days=default_days) if default_days > 0 else None
    if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int) \
            or not 0 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise Invalid(f"'expires_in_days' must be a whole number from 1 to {MAX_TOKEN_DAYS}.",
                      {"field": "expires_in_days"})
    if expires_in_days == 0:
        if not is_admin:
            raise Forbidden("Only a platform administrator may create a token that never expires; "
                            f"ask for at most {MAX_TOKEN_DAYS} days.", {"field": "expires_in_days"})
        return None
    return now + timedelta(days=expires_in_days)


def device_of(user_agent: str | None) -> str:
    text = "".join(c for c in (user_agent or "") if c.isprintable())
    return text[:DEVICE_CHARS]


def session_dict(token: Token, current_id: int | None) -> dict:
    return {"id": token.id, "device": token.device, "source_ip": token.source_ip,
            "created_at": rfc3339(token.created_at), "last_used_at": rfc3339(token.last_used_at),
            "expires_at": rfc3339(token.expires_at), "current": token.id == current_id}


def live(stmt, now: datetime | None = None):
    now = now or utcnow()
    return stmt.where(Token.revoked_at.is_(None),
                      or_(Token.expires_at.is_(None), Token.expires_at > now))


def live_sessions(user_id: int):
    return live(select(Token).where(Token.user_id == user_id, Token.kind == "session"))


def owned_session(db: Session, user_id: int, session_id) -> Token:
    token = db.get(Token, session_id) if isinstance(session_id, int) else None
    if token is None or token.user_id != user_id or token.kind != "session" \
            or token.revoked_at is not None:
        raise NotFound("No such session.", {"session_id": session_id})
    return token


def revoke(tokens: list[Token]) -> list[str]:
    """Mark ``tokens`` revoked; their hashes, for ``forget`` once committed."""
    now = utcnow()
    for token in tokens:
        token.revoked_at = token.revoked_at or now
    return [t.token_hash for t in tokens]


def forget(redis, keys: Keys, hashes: list[str]) -> None:
    """After the commit: tombstone first, then drop the cached answers (see the module doc)."""
    if not hashes:
        return
    pipe = redis.pipeline(transaction=False)
    for digest in hashes:
        pipe.set(keys.token_revoked(digest), "1", ex=TOMBSTONE_SECONDS)
    for digest in hashes:
        pipe.delete(keys.token(digest))
    pipe.execute()


def token_name(name) -> str:
    """A token's label: at most 100 characters as sent, no control characters anywhere
    (``strip()`` would quietly drop them at the ends)."""
    if isinstance(name, str) and (len(name) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in name)):
        raise Invalid("'name' must be at most 100 characters, without control characters.",
                      {"field": "name"})
    name = name.strip() if isinstance(name, str) else name
    if not isinstance(name, str) or not name:
        raise Invalid("'name' is required: a label of at most 100 characters.", {"field": "name"})
    return name


def beyond_limit(db: Session, user_id: int, limit: int) -> list[Token]:
    """A user's live sessions past the newest ``limit`` (to be ended)."""
    if limit <= 0:
        return []
    stmt = live_sessions(user_id).order_by(Token.id.desc()).offset(limit)
    return list(db.scalars(stmt))
