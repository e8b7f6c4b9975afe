"""Users, tokens, the blacklist and the audit trail — plain SQLAlchemy, no nameko.

Every function takes the worker's session and leaves committing to the caller.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth.domain.oauth import ProviderUser
from services.auth.domain.tokens import display_prefix, new_token, token_hash
from services.auth.models import AuditEntry, BlacklistEntry, Identity, Token, User
from shared.errors import Invalid, NotFound, Unauthorized
from shared.paging import page
from shared.timeutil import rfc3339, utcnow

MAX_TOKEN_DAYS = 3650


def user_dict(user: User) -> dict:
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "email": user.email, "is_admin": bool(user.is_admin)}


def audit(db: Session, actor: str | None, action: str, target: str = "", details: dict | None = None,
          source_ip: str | None = None, event_id: str | None = None) -> None:
    db.add(AuditEntry(actor=actor or "", action=action, target=target or "", details=details or {},
                      source_ip=source_ip or "", event_id=event_id))


def _free_username(db: Session, wanted: str) -> str:
    """``wanted``, or ``wanted-2``… when another person already has it."""
    candidate, n = wanted, 1
    while db.scalar(select(User.id).where(User.username == candidate)):
        n += 1
        candidate = f"{wanted}-{n}"
    return candidate


def login(db: Session, provider: str, person: ProviderUser, admin_username: str) -> User:
    """First login creates the user; later logins refresh their name and email."""
    identity = db.scalar(select(Identity).where(Identity.provider == provider,
                                                Identity.subject == person.subject))
    if identity is not None:
        user = db.get(User, identity.user_id)
    else:
        user = db.scalar(select(User).where(User.username == person.username))
        if user is not None and user.username != admin_username:
            # The name belongs to someone who logged in elsewhere: keep both apart.
            user = None
        if user is None:
            user = User(username=_free_username(db, person.username[:64]))
            db.add(user)
            db.flush()
        db.add(Identity(user_id=user.id, provider=provider, subject=person.subject))
    user.display_name = person.display_name[:128]
    user.email = person.email[:254]
    user.last_login_at = utcnow()
    db.flush()
    return user


def issue_token(db: Session, user: User, kind: str, name: str = "",
                expires_at: datetime | None = None) -> tuple[Token, str]:
    secret = new_token(kind)
    token = Token(user_id=user.id, kind=kind, name=name, token_hash=token_hash(secret),
                  prefix=display_prefix(secret), expires_at=expires_at)
    db.add(token)
    db.flush()
    return token, secret


def personal_expiry(expires_in_days) -> datetime | None:
    if expires_in_days is None:
        return None
    if isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int) \
            or not 1 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise Invalid(f"'expires_in_days' must be a whole number from 1 to {MAX_TOKEN_DAYS}.",
                      {"field": "expires_in_days"})
    return utcnow() + timedelta(days=expires_in_days)


def token_dict(token: Token) -> dict:
    return {"id": token.id, "name": token.name, "kind": token.kind, "prefix": token.prefix,
            "created_at": rfc3339(token.created_at), "expires_at": rfc3339(token.expires_at),
            "last_used_at": rfc3339(token.last_used_at), "revoked": token.revoked_at is not None}


def verify(db: Session, secret: str) -> tuple[Token, User]:
    """The live token and its user, or ``Unauthorized`` saying why not."""
    token = db.scalar(select(Token).where(Token.token_hash == token_hash(secret)))
    if token is None:
        raise Unauthorized("The token is not valid.")
    if token.revoked_at is not None:
        raise Unauthorized("The token has been revoked.")
    now = utcnow()
    if token.expires_at is not None and token.expires_at <= now:
        raise Unauthorized("Your session has expired; log in again." if token.kind == "session"
                           else "The token has expired.")
    user = db.get(User, token.user_id)
    if db.get(BlacklistEntry, user.id) is not None:
        raise Unauthorized("Your account is blocked.")
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now  # coarse on purpose: one write per token per 5 minutes at most
    return token, user


def search_users(db: Session, q: str, limit: int, cursor: str | None, full: bool = True) -> dict:
    """``full`` (admins): every field, matched on email too. Otherwise names only, matched on
    names only: a member looking for someone to add learns nobody's email address."""
    stmt = select(User)
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        matched = [User.username.like(like), User.display_name.like(like)] + ([User.email.like(like)] if full else [])
        stmt = stmt.where(or_(*matched))
    shown = user_dict if full else (lambda u: {"id": u.id, "username": u.username, "display_name": u.display_name})
    return page(db, stmt, User.id, limit, cursor, shown)


def user_by_username(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"There is no user called {username!r}.", {"username": username})
    return user


def ensure_admin(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, display_name="Administrator", is_admin=True)
        db.add(user)
        try:
            db.flush()
        except IntegrityError:  # another replica created it first
            db.rollback()
            user = db.scalar(select(User).where(User.username == username))
    elif not user.is_admin:
        user.is_admin = True
    return user
