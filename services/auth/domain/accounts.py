"""Users, tokens, the blacklist and the audit trail — plain SQLAlchemy, no nameko.

Every function takes the worker's session and leaves committing to the caller.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.auth.domain import usernames
from services.auth.domain.oauth import ProviderUser
from shared.tokens import display_prefix, new_token, token_hash
from services.auth.models import AuditEntry, BlacklistEntry, Identity, Token, User
from shared.errors import Conflict, Invalid, NotFound, Unauthorized
from shared.paging import page
from shared.timeutil import parse_rfc3339, rfc3339, utcnow

log = logging.getLogger(__name__)

def user_dict(user: User) -> dict:
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "email": user.email, "is_admin": bool(user.is_admin)}


def audit_query(actor: str | None, action: str | None, since: str | None):
    """The audit entries asked for (newest first is the caller's ordering)."""
    stmt = select(AuditEntry)
    if actor:
        stmt = stmt.where(AuditEntry.actor == actor)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if since:
        try:
            stmt = stmt.where(AuditEntry.created_at >= parse_rfc3339(since))
        except ValueError:
            raise Invalid("'since' must be an RFC 3339 time, e.g. 2026-01-31T00:00:00Z.",
                          {"field": "since"})
    return stmt


def audit_dict(entry: AuditEntry) -> dict:
    return {"id": entry.id, "actor": entry.actor, "action": entry.action, "target": entry.target,
            "details": entry.details, "source_ip": entry.source_ip, "time": rfc3339(entry.created_at)}


def audit(db: Session, actor: str | None, action: str, target: str = "", details: dict | None = None,
          source_ip: str | None = None, event_id: str | None = None) -> None:
    db.add(AuditEntry(actor=actor or "", action=action, target=target or "", details=details or {},
                      source_ip=source_ip or "", event_id=event_id))


@dataclass(frozen=True)
class Bootstrap:
    """The first administrator: an account MAE creates itself (``username``, reached with
    the token `make admin-token` / ``python -m services.auth.admin_token`` prints), and
    the one login identity bound to it (``BOOTSTRAP_ADMIN: "<provider>:<subject>"``).
    No other identity ever reaches that account, whatever name it claims."""

    username: str = "admin"
    provider: str = ""
    subject: str = ""

    @classmethod
    def from_config(cls, config: dict) -> "Bootstrap":
        raw = str(config.get("BOOTSTRAP_ADMIN") or "").strip()
        username = str(config.get("BOOTSTRAP_ADMIN_USERNAME") or "").strip() or "admin"
        if raw and ":" not in raw:
            # The old form named a username. It names the token account still, and binds
            # no identity: a name is what anyone can claim at a provider.
            log.warning("BOOTSTRAP_ADMIN %r is a username, not <provider>:<subject>: no login "
                        "identity is the administrator", raw)
            return cls(username=raw)
        provider, _, subject = raw.partition(":")
        return cls(username=username, provider=provider.strip(), subject=subject.strip())

    def binds(self, provider: str, subject: str) -> bool:
        return bool(self.provider and self.subject) and (provider, subject) == (self.provider, self.subject)


def _bootstrap_account(db: Session, bootstrap: Bootstrap, locking: bool = False) -> User | None:
    stmt = select(User).where(User.username == bootstrap.username)
    user = db.scalar(stmt.with_for_update(read=True) if locking else stmt)
    return user if user is not None and user.is_admin else None


def _new_user(db: Session, person: ProviderUser, bootstrap: Bootstrap) -> User:
    """A plain account named after what the provider suggests, suffixed while taken."""
    base = usernames.choose([person.username, person.email.split("@")[0]])
    for candidate in usernames.candidates(base, reserved=[bootstrap.username]):
        folded = usernames.key(candidate)
        if db.scalar(select(User.id).where(or_(User.username == candidate, User.username_key == folded))):
            continue
        user = User(username=candidate, username_key=folded, is_admin=False)
        try:
            with db.begin_nested():  # another login may take the same name at the same moment
                db.add(user)
        except IntegrityError:
            continue
        return user
    raise AssertionError("unreachable: candidates() never ends")


def login(db: Session, provider: str, person: ProviderUser, bootstrap: Bootstrap) -> User:
    """The user of this identity (provider + subject) — created at its first login — with
    name and email refreshed. Only the identity ``bootstrap`` binds reaches the bootstrap
    account; the name the provider suggests only ever names a new, plain account."""
    bound = bootstrap.binds(provider, person.subject)
    identity = db.scalar(select(Identity).where(Identity.provider == provider,
                                                Identity.subject == person.subject))
    user = db.get(User, identity.user_id) if identity is not None else None
    if identity is not None:
        admin = _bootstrap_account(db, bootstrap)
        if bound and (admin is None or user.id != admin.id):
            admin = ensure_bootstrap(db, bootstrap)
            audit(db, "system", "identity_moved", f"user:{admin.username}",
                  {"provider": provider, "subject": person.subject, "from": user.username})
            identity.user_id, user = admin.id, admin
        elif not bound and admin is not None and user.id == admin.id:
            # Attached by the old rule (a matching name) or by an earlier BOOTSTRAP_ADMIN.
            db.delete(identity)
            db.flush()
            audit(db, "system", "identity_detached", f"user:{admin.username}",
                  {"provider": provider, "subject": person.subject})
            identity = user = None
    if identity is None:
        user = ensure_bootstrap(db, bootstrap) if bound else _new_user(db, person, bootstrap)
        identity = Identity(user_id=user.id, provider=provider, subject=person.subject)
        try:
            with db.begin_nested():
                db.add(identity)
        except IntegrityError:  # the same person's other login got here first
            if not bound:
                db.delete(user)  # the account made for this login a moment ago
            # A locking read sees the other transaction's row (a plain one would read the snapshot).
            identity = db.scalar(select(Identity).where(Identity.provider == provider,
                                                        Identity.subject == person.subject)
                                 .with_for_update(read=True))
            if identity is None:
                raise
            user = db.get(User, identity.user_id)
    now = utcnow()
    identity.claimed_username = person.username[:255]
    identity.email = person.email[:254]
    identity.last_login_at = now
    user.display_name = person.display_name[:128]
    user.email = person.email[:254]
    user.last_login_at = now
    db.flush()
    return user


def issue_token(db: Session, user: User, kind: str, name: str = "",
                expires_at: datetime | None = None, scope: str = "write",
                device: str = "", source_ip: str = "") -> tuple[Token, str]:
    secret = new_token(kind)
    token = Token(user_id=user.id, kind=kind, name=name, token_hash=token_hash(secret),
                  prefix=display_prefix(secret), expires_at=expires_at, scope=scope,
                  device=device, source_ip=(source_ip or "")[:64])
    db.add(token)
    db.flush()
    return token, secret


def token_dict(token: Token) -> dict:
    return {"id": token.id, "name": token.name, "kind": token.kind, "prefix": token.prefix,
            "scope": token.scope or "write",
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
        # usernames compare exactly (binary collation); a search still ignores case
        matched = [User.username.ilike(like), User.display_name.like(like)] + ([User.email.like(like)] if full else [])
        stmt = stmt.where(or_(*matched))
    shown = user_dict if full else (lambda u: {"id": u.id, "username": u.username, "display_name": u.display_name})
    return page(db, stmt, User.id, limit, cursor, shown)


def user_by_username(db: Session, username: str) -> User:
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"There is no user called {username!r}.", {"username": username})
    return user


def ensure_bootstrap(db: Session, bootstrap: Bootstrap) -> User:
    """The bootstrap admin account, created on first start (it has no password: it is
    reached by its token, or by the one identity ``BOOTSTRAP_ADMIN`` binds). Identities
    attached to it that the binding does not name are detached (they log in to an
    account of their own next time)."""
    user = _bootstrap_account(db, bootstrap)
    if user is None:
        if db.scalar(select(User.id).where(or_(User.username == bootstrap.username,
                                               User.username_key == usernames.key(bootstrap.username)))):
            raise Conflict(f"The name {bootstrap.username!r} belongs to someone who is not an administrator; "
                           "choose another BOOTSTRAP_ADMIN_USERNAME.", {"username": bootstrap.username})
        user = User(username=bootstrap.username, username_key=usernames.key(bootstrap.username),
                    display_name="Administrator", is_admin=True)
        try:
            with db.begin_nested():
                db.add(user)
        except IntegrityError:  # another replica created it first
            user = _bootstrap_account(db, bootstrap, locking=True)
            if user is None:
                raise
    for identity in list(db.scalars(select(Identity).where(Identity.user_id == user.id))):
        if not bootstrap.binds(identity.provider, identity.subject):
            db.delete(identity)
            audit(db, "system", "identity_detached", f"user:{user.username}",
                  {"provider": identity.provider, "subject": identity.subject})
    db.flush()
    return user


def ensure_admin(db: Session, username_or_config) -> User:
    """``ensure_bootstrap`` from a config (or, as before, a bare username)."""
    if isinstance(username_or_config, dict):
        return ensure_bootstrap(db, Bootstrap.from_config(username_or_config))
    return ensure_bootstrap(db, Bootstrap(username=str(username_or_config)))
