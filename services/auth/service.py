"""Entrypoints of the auth service: login, tokens, users, blacklist, audit. Kept thin."""
from __future__ import annotations

from datetime import timedelta

from nameko.dependency_providers import Config
from sqlalchemy import select

from services.auth.blacklist import BlacklistMirror
from services.auth.domain import accounts, login_state, sessions
from services.auth.domain.oauth import configured_providers
from services.auth.retention import Retention
from services.auth.models import AuditEntry, BlacklistEntry, ProcessedEvent, Token, User
from shared.audit import AUDIT_SOURCE
from shared.errors import BadRequest, NotFound
from shared.events import handle_event
from shared.processed_events import first_delivery
from shared.keys import Keys
from shared.paging import page
from shared.service import ServiceBase, rpc
from shared.timeutil import rfc3339, utcnow

BOOTSTRAP_TOKEN_NAME = "bootstrap"


class AuthService(Retention, ServiceBase):
    name = "auth"

    config = Config()
    blacklist = BlacklistMirror()

    @property
    def keys(self) -> Keys:
        return Keys.from_config(self.config)

    def _provider(self, name):
        provider = configured_providers(self.config).get(name)
        if provider is None:
            raise NotFound(f"There is no login provider called {name!r}.", {"provider": name})
        return provider

    # -- login ----------------------------------------------------------------

    @rpc
    def providers(self):
        return [{"name": p.name, "display_name": p.display_name, "kind": p.kind}
                for p in configured_providers(self.config).values()]

    @rpc
    def begin_login(self, provider, console_state=None):
        request = self._provider(provider).authorization_request()
        login_state.save(self.redis, self.keys, request, provider, console_state)
        return {"authorize_url": request.url}

    @rpc
    def complete_login(self, provider, code, state, source_ip=None, iss=None, device=None):
        try:
            if not state or not code:
                raise login_state.LoginRefused("The login callback needs both 'code' and 'state'.",
                                               "missing code or state")
            saved = login_state.take(self.redis, self.keys, provider, state)
            nonces = login_state.RedisNonces(self.redis, self.keys)
            person = self._provider(provider).complete(code, saved, nonces, iss=iss)
        except login_state.LoginRefused as exc:
            self._login_failed(provider, exc.audit_reason, source_ip)
            raise BadRequest(exc.message) from None   # the caller's answer; the reason is audited
        except BadRequest as exc:   # the provider's refusal: its message is the reason
            self._login_failed(provider, exc.message, source_ip)
            raise
        # Who logged in is (provider, subject); the account follows from that alone.
        user = accounts.login(self.db, provider, person, accounts.Bootstrap.from_config(self.config))
        ttl = timedelta(hours=float(self.config.get("SESSION_TTL_HOURS", 12)))
        token, secret = accounts.issue_token(self.db, user, "session", f"login via {provider}",
                                             utcnow() + ttl, device=sessions.device_of(device),
                                             source_ip=source_ip or "")
        # A person has at most MAX_SESSIONS live sessions: the oldest end as new ones start.
        ended = sessions.revoke(sessions.beyond_limit(self.db, user.id,
                                                      int(self.config.get("MAX_SESSIONS", 50))))
        accounts.audit(self.db, user.username, "login", f"user:{user.username}",
                       {"provider": provider, "subject": person.subject}, source_ip)
        self.db.commit()
        sessions.forget(self.redis, self.keys, ended)
        return {"token": secret, "user": accounts.user_dict(user),
                "expires_at": rfc3339(token.expires_at), "console_state": saved.get("console_state")}

    def _login_failed(self, provider, reason, source_ip):
        accounts.audit(self.db, "", "login_failed", f"provider:{provider}", {"reason": reason}, source_ip)
        self.db.commit()  # the caller gets an error, the audit row stays

    # -- tokens -------------------------------------------------------------------

    @rpc
    def verify_token(self, token):
        """Who holds this token: ``{"user", "token_id", "kind", "scope", "expires_at"}`` or Unauthorized."""
        record, user = accounts.verify(self.db, token)
        return {"user": accounts.user_dict(user), "token_id": record.id, "kind": record.kind,
                "scope": record.scope or "write", "token_hash": record.token_hash,
                "expires_at": rfc3339(record.expires_at)}

    @rpc
    def create_token(self, user_id, name, expires_in_days=None, source_ip=None, scope=None):
        user = self.db.get(User, user_id)
        if user is None:
            raise NotFound("No such user.")
        name = sessions.token_name(name)
        expires_at = sessions.personal_expiry(expires_in_days, bool(user.is_admin),
                                              int(self.config.get("TOKEN_DEFAULT_DAYS", 90)))
        token, secret = accounts.issue_token(self.db, user, "personal", name, expires_at,
                                             scope=sessions.scope_of(scope))
        accounts.audit(self.db, user.username, "token_created", f"token:{token.id}",
                       {"name": name, "scope": token.scope,
                        "expires_at": rfc3339(token.expires_at)}, source_ip)
        return {**accounts.token_dict(token), "token": secret}

    @rpc
    def list_tokens(self, user_id, limit=None, cursor=None):
        stmt = select(Token).where(Token.user_id == user_id, Token.kind == "personal",
                                   Token.revoked_at.is_(None))
        return page(self.db, stmt, Token.id, limit, cursor, accounts.token_dict)

    @rpc
    def revoke_token(self, user_id, token_id, source_ip=None):
        token = self.db.get(Token, token_id) if isinstance(token_id, int) else None
        if token is None or token.user_id != user_id or token.kind != "personal" \
                or token.revoked_at is not None:
            raise NotFound("No such token.", {"token_id": token_id})
        self._end(user_id, [token], "token_revoked", f"token:{token.id}", {"name": token.name}, source_ip)

    # -- sessions -------------------------------------------------------------------

    @rpc
    def list_sessions(self, user_id, current_token_id=None, limit=None, cursor=None):
        return page(self.db, sessions.live_sessions(user_id), Token.id, limit, cursor,
                    lambda t: sessions.session_dict(t, current_token_id), descending=True)

    @rpc
    def end_session(self, user_id, session_id, source_ip=None):
        token = sessions.owned_session(self.db, user_id, session_id)
        self._end(user_id, [token], "session_ended", f"session:{token.id}", {}, source_ip)

    @rpc
    def end_other_sessions(self, user_id, current_token_id=None, source_ip=None):
        others = [t for t in self.db.scalars(sessions.live_sessions(user_id)) if t.id != current_token_id]
        self._end(user_id, others, "sessions_ended", f"user:{user_id}", {"count": len(others)}, source_ip)
        return {"ended": len(others)}

    @rpc
    def logout(self, user_id, token_id, source_ip=None):
        """Ends the session the caller used (a personal token is ended with DELETE /tokens/{id})."""
        token = self.db.get(Token, token_id) if isinstance(token_id, int) else None
        if token is not None and token.user_id == user_id and token.kind == "session" \
                and token.revoked_at is None:
            self._end(user_id, [token], "logout", f"session:{token.id}", {}, source_ip)

    def _end(self, user_id, tokens, action, target, details, source_ip):
        hashes = sessions.revoke(tokens)
        user = self.db.get(User, user_id)
        accounts.audit(self.db, user.username, action, target, details, source_ip)
        self.db.commit()  # the truth first; then no gateway may serve them from its cache
        sessions.forget(self.redis, self.keys, hashes)

    @rpc
    def issue_bootstrap_token(self, rotate=False):
        """The first admin's personal token, shown once (like Argo CD's initial secret).

        Returns ``None`` when it was issued before, unless ``rotate`` revokes
        the old one and issues a new one.
        """
        admin = accounts.ensure_bootstrap(self.db, accounts.Bootstrap.from_config(self.config))
        existing = list(self.db.scalars(select(Token).where(
            Token.user_id == admin.id, Token.kind == "personal", Token.name == BOOTSTRAP_TOKEN_NAME)))
        if existing and not rotate:
            return None
        for token in existing:
            token.revoked_at = token.revoked_at or utcnow()
        token, secret = accounts.issue_token(self.db, admin, "personal", BOOTSTRAP_TOKEN_NAME)
        accounts.audit(self.db, "system", "token_created", f"token:{token.id}",
                       {"name": BOOTSTRAP_TOKEN_NAME, "user": admin.username})
        self.db.commit()
        for old in existing:
            self.redis.delete(self.keys.token(old.token_hash))
        return {"username": admin.username, "token": secret}

    # -- users ----------------------------------------------------------------------

    @rpc
    def get_user(self, user_id):
        user = self.db.get(User, user_id)
        if user is None:
            raise NotFound("No such user.")
        return accounts.user_dict(user)

    @rpc
    def get_user_by_username(self, username):
        return accounts.user_dict(accounts.user_by_username(self.db, username))

    @rpc
    def search_users(self, q="", limit=None, cursor=None, full=False):
        return accounts.search_users(self.db, q or "", limit, cursor, full=bool(full))

    # -- blacklist ----------------------------------------------------------------

    @rpc
    def block_user(self, username, actor, reason="", source_ip=None):
        user = accounts.user_by_username(self.db, username)
        if self.db.get(BlacklistEntry, user.id) is None:
            self.db.add(BlacklistEntry(user_id=user.id, username=user.username,
                                       reason=(reason or "")[:500], created_by=actor))
            accounts.audit(self.db, actor, "user_blocked", f"user:{username}", {"reason": reason}, source_ip)
        self.db.commit()  # MySQL first, then Redis
        self.redis.sadd(self.keys.blacklist, str(user.id))
        return {"username": user.username, "blocked": True}

    @rpc
    def unblock_user(self, username, actor, source_ip=None):
        user = accounts.user_by_username(self.db, username)
        entry = self.db.get(BlacklistEntry, user.id)
        if entry is not None:
            self.db.delete(entry)
            accounts.audit(self.db, actor, "user_unblocked", f"user:{username}", {}, source_ip)
        self.db.commit()
        self.redis.srem(self.keys.blacklist, str(user.id))
        return None

    @rpc
    def is_blocked(self, user_id):
        return self.db.get(BlacklistEntry, user_id) is not None

    # -- audit ----------------------------------------------------------------------

    @rpc
    def list_audit(self, actor=None, action=None, since=None, limit=None, cursor=None):
        return page(self.db, accounts.audit_query(actor, action, since), AuditEntry.id, limit, cursor,
                    accounts.audit_dict, descending=True)

    @handle_event(AUDIT_SOURCE, "recorded")
    def on_audit(self, event):
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        data = event["data"]
        accounts.audit(self.db, data.get("actor"), data["action"], data.get("target", ""),
                       data.get("details"), data.get("source_ip"), event_id=event["event_id"])

