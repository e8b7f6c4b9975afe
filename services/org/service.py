"""Entrypoints of the org service: applications, members and roles. Kept thin."""
from __future__ import annotations

import logging

from nameko.dependency_providers import Config
from redis.exceptions import RedisError
from sqlalchemy import select

from services.org.domain import apps as domain
from services.org import schemas
from services.org.domain import policy as app_policy
from services.org.retention import Retention
from services.org.models import Application, Member
from shared.audit import AuditLog
from shared.errors import Unavailable
from shared.events import EventPublisher
from shared.keys import Keys
from shared.paging import page
from shared.service import ServiceBase, rpc

log = logging.getLogger(__name__)


class OrgService(Retention, ServiceBase):
    name = "org"

    config = Config()
    events = EventPublisher()
    audit = AuditLog()

    @property
    def keys(self) -> Keys:
        return Keys.from_config(self.config)

    def _changed(self, *user_ids: int) -> None:
        """Commit, and make the gateway's cached RBAC answers and app lists stale.

        Those are tagged with generations (``shared.keys``): the users' membership
        generations, or — no user given — the one every user's answers carry
        (an application created, changed or deleted). Bumped before the commit,
        so that without Redis nothing changes (503) and no stale answer can
        outlive the change; and again after it, so that answers read from the
        old rows while the commit was under way are not served either.
        """
        generations = [self.keys.member_generation(u) for u in user_ids] or [self.keys.apps_generation]
        self._bump(generations)
        self.db.commit()
        try:
            self._bump(generations)
        except Unavailable as exc:
            # Committed: only what was cached during the commit may be stale, for
            # at most the gateway's cache lifetime. Do not report the change as failed.
            log.error("cache generations not bumped after commit: %s", exc.message)

    def _bump(self, generations: list[str]) -> None:
        try:
            pipe = self.redis.pipeline(transaction=False)
            for name in generations:
                pipe.incr(name)
            pipe.execute()
        except RedisError as exc:
            raise Unavailable("The cache cannot be reached; nothing was changed, try again shortly.",
                              {"dependency": "redis"}) from exc

    @rpc
    def create_app(self, data, actor, source_ip=None, taken_on=None):
        domain.check_may_create(self.db, actor, self.config.get("APP_CREATORS"), self.config.get("APPS_PER_USER"))
        app = domain.create_app(self.db, data, actor["id"], actor["username"],
                                reserved=self.config.get("RESERVED_NAMESPACES") or (), taken_on=taken_on)
        self.events.publish(schemas.APPLICATION_CREATED, schemas.application_created(
            app.name, app.display_name, app.id, app_policy.view(app.policy)))
        self.audit.record(actor["username"], "app_created", f"app:{app.name}", {}, source_ip)
        self._changed()
        return domain.app_dict(app, "owner")

    @rpc
    def list_apps(self, user_id, is_admin=False, limit=None, cursor=None):
        # One query: each app with the caller's role in it (outer join, so admins
        # also see apps they are not a member of).
        role = Member.role.label("role")
        stmt = select(Application, role).outerjoin(
            Member, (Member.app_id == Application.id) & (Member.user_id == user_id))
        if not is_admin:
            stmt = stmt.where(Member.id.is_not(None))
        return page(self.db, stmt, Application.id, limit, cursor,
                    lambda row: domain.app_dict(row[0], row[1] or "admin"), rows=True)

    @rpc
    def all_apps(self):
        """Every application as ``[id, name, policy]``: the namespaces a newly registered
        cluster needs, marked with the app's id, with the app's policy overrides."""
        return [[app_id, name, app_policy.view(stored)] for app_id, name, stored in
                self.db.execute(select(Application.id, Application.name, Application.policy)
                                .order_by(Application.id))]

    @rpc
    def app_policy(self, name):
        """The app's policy overrides (``pod_security`` always set; ``null``: the default)."""
        return app_policy.view(domain.get_app(self.db, name).policy)

    @rpc
    def set_app_policy(self, name, data, actor, source_ip=None):
        """Platform admins only (the gateway checks): audited, with the old and new values,
        and announced so the cluster service relabels the app's namespaces."""
        app = domain.get_app(self.db, name)
        old = app_policy.view(app.policy)
        app.policy = app_policy.check(data, app.policy)
        new = app_policy.view(app.policy)
        if new != old:
            self.events.publish(schemas.APP_POLICY_CHANGED, schemas.app_policy_changed(app.name, app.id, new))
            self.audit.record(actor["username"], "app_policy_changed", f"app:{name}", {"old": old, "new": new},
                              source_ip)
        self._changed()
        return new

    @rpc
    def get_app(self, name, user_id=None, is_admin=False):
        app = domain.get_app(self.db, name)
        role = domain.role_of(self.db, app, user_id) if user_id is not None else None
        return domain.app_dict(app, role or ("admin" if is_admin else None))

    @rpc
    def role_of(self, name, user_id):
        """``{"exists", "role"}`` — what the gateway's RBAC needs, nothing more."""
        app = self.db.scalar(select(Application).where(Application.name == name))
        if app is None:
            return {"exists": False, "role": None}
        return {"exists": True, "role": domain.role_of(self.db, app, user_id)}

    @rpc
    def member_anywhere(self, user_id):
        return self.db.scalar(select(Member.id).where(Member.user_id == user_id).limit(1)) is not None

    @rpc
    def update_app(self, name, data, actor, source_ip=None):
        app = domain.update_app(self.db, domain.get_app(self.db, name), data)
        self.audit.record(actor["username"], "app_updated", f"app:{name}", {"fields": sorted(data)}, source_ip)
        self._changed()
        return domain.app_dict(app)

    @rpc
    def delete_app(self, name, actor, source_ip=None):
        app = domain.get_app(self.db, name)
        self.db.delete(app)
        self.events.publish(schemas.APPLICATION_DELETED, schemas.application_deleted(name, app.id))
        self.audit.record(actor["username"], "app_deleted", f"app:{name}", {}, source_ip)
        self._changed()
        return None

    @rpc
    def list_members(self, name, limit=None, cursor=None):
        app = domain.get_app(self.db, name)
        stmt = select(Member).where(Member.app_id == app.id)
        return page(self.db, stmt, Member.id, limit, cursor,
                    lambda m: {"username": m.username, "role": m.role,
                               "user_id": m.user_id})

    @rpc
    def set_member(self, name, user_id, username, role, actor, source_ip=None):
        app = domain.get_app(self.db, name)
        old, new = domain.set_member(self.db, app, user_id, username, role)
        action = "member_added" if old is None else "member_role_changed"
        if old != new:
            self.audit.record(actor["username"], action, f"app:{name}",
                              {"username": username, "old_role": old, "role": new}, source_ip)
        self._changed(user_id)
        return {"username": username, "role": new}

    @rpc
    def remove_member(self, name, username, actor, source_ip=None):
        app = domain.get_app(self.db, name)
        member = domain.remove_member(self.db, app, username)
        self.audit.record(actor["username"], "member_removed", f"app:{name}",
                          {"username": username, "role": member.role}, source_ip)
        self._changed(member.user_id)
        return None
