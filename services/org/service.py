"""Entrypoints of the org service: applications, members and roles. Kept thin."""
from __future__ import annotations

from nameko.dependency_providers import Config
from sqlalchemy import select

from services.org.domain import apps as domain
from services.org.models import Application, Member
from shared.audit import AuditLog
from shared.events import EventPublisher
from shared.keys import Keys
from shared.paging import page
from shared.service import ServiceBase, rpc


class OrgService(ServiceBase):
    name = "org"

    config = Config()
    events = EventPublisher()
    audit = AuditLog()

    @property
    def keys(self) -> Keys:
        return Keys.from_config(self.config)

    def _forget_roles(self, app_name: str, user_id: int | None = None) -> None:
        """Drop the gateway's cached RBAC answers (after the commit: MySQL first)."""
        self.db.commit()
        if user_id is not None:
            self.redis.delete(self.keys.role(app_name, user_id), self.keys.membership_any(user_id))
            return
        stale = list(self.redis.scan_iter(self.keys.roles_of_app(app_name), count=500))
        if stale:
            self.redis.delete(*stale)

    @rpc
    def create_app(self, data, actor, source_ip=None):
        app = domain.create_app(self.db, data, actor["id"], actor["username"])
        self.events.publish("application_created", {"name": app.name, "display_name": app.display_name})
        self.audit.record(actor["username"], "app_created", f"app:{app.name}", {}, source_ip)
        self._forget_roles(app.name)
        self.redis.delete(self.keys.membership_any(actor["id"]))
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
    def all_app_names(self):
        """Every application's name: the namespaces a newly registered cluster needs."""
        return list(self.db.scalars(select(Application.name).order_by(Application.id)))

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
        return domain.app_dict(app)

    @rpc
    def delete_app(self, name, actor, source_ip=None):
        app = domain.get_app(self.db, name)
        members = list(self.db.scalars(select(Member.user_id).where(Member.app_id == app.id)))
        self.db.delete(app)
        self.events.publish("application_deleted", {"name": name})
        self.audit.record(actor["username"], "app_deleted", f"app:{name}", {}, source_ip)
        self._forget_roles(name)
        for user_id in members:
            self.redis.delete(self.keys.membership_any(user_id))
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
        self._forget_roles(name, user_id)
        return {"username": username, "role": new}

    @rpc
    def remove_member(self, name, username, actor, source_ip=None):
        app = domain.get_app(self.db, name)
        member = domain.remove_member(self.db, app, username)
        self.audit.record(actor["username"], "member_removed", f"app:{name}",
                          {"username": username, "role": member.role}, source_ip)
        self._forget_roles(name, member.user_id)
        return None
