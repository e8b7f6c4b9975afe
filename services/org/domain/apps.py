"""Applications and members — plain SQLAlchemy, no nameko."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.org.models import Application, Member
from shared.errors import AlreadyExists, Conflict, Forbidden, Invalid, NamespaceExists, NotFound, QuotaExceeded
from shared.names import check_label, check_not_reserved
from shared.roles import ROLES
from shared.timeutil import rfc3339


def app_dict(app: Application, role: str | None = None) -> dict:
    data = {"name": app.name, "display_name": app.display_name, "description": app.description,
            "created_by": app.created_by, "created_at": rfc3339(app.created_at),
            "updated_at": rfc3339(app.updated_at)}
    if role is not None:
        data["role"] = role
    return data


def get_app(db: Session, name: str) -> Application:
    app = db.scalar(select(Application).where(Application.name == name)) if isinstance(name, str) else None
    if app is None:
        raise NotFound(f"Application {name!r} was not found.", {"app": name})
    return app


def _text(data: dict, field: str, limit: int) -> str:
    value = data.get(field, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"'{field}' must be text.", {"field": field})
    if len(value) > limit:
        raise Invalid(f"'{field}' must be at most {limit} characters.", {"field": field})
    return value


def check_may_create(db: Session, actor: dict, creators: str, per_user) -> None:
    """``APP_CREATORS`` (everyone | admins) and ``APPS_PER_USER`` (apps a person owns;
    admins exempt)."""
    if actor.get("is_admin"):
        return
    if str(creators or "everyone").strip().lower() == "admins":
        raise Forbidden("Only platform admins may create applications here; ask one to create it "
                        "and make you its owner.", {"setting": "APP_CREATORS"})
    limit = int(per_user) if per_user not in (None, "") else 20
    owned = db.scalar(select(func.count()).select_from(Member).where(
        Member.user_id == actor["id"], Member.role == "owner")) or 0
    if owned >= limit:
        raise QuotaExceeded(f"You own {owned} applications, the most one person may own here ({limit}); "
                            "delete one or ask an admin.", {"limit": limit, "owned": owned})


def create_app(db: Session, data: dict, owner_id: int, owner_name: str, reserved=(),
               taken_on=None) -> Application:
    """``taken_on``: clusters where a namespace of this name exists already (the cluster
    service asked them): MAE never adopts one, so the app is refused."""
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    name = check_not_reserved(check_label(data.get("name"), "name"), reserved)
    if db.scalar(select(Application.id).where(Application.name == name)):
        raise AlreadyExists(f"An application called {name!r} exists already.", {"app": name})
    if taken_on:
        raise NamespaceExists(f"A namespace called {name!r} exists already on cluster "
                              f"{', '.join(taken_on)} and was not created by MAE for a new application; "
                              "MAE never takes over a namespace. Choose another name.",
                              {"field": "name", "clusters": list(taken_on)})
    app = Application(name=name, display_name=_text(data, "display_name", 128) or name,
                      description=_text(data, "description", 4000), created_by=owner_name)
    db.add(app)
    db.flush()
    db.add(Member(app_id=app.id, user_id=owner_id, username=owner_name, role="owner"))
    db.flush()
    return app


def update_app(db: Session, app: Application, data: dict) -> Application:
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    unknown = set(data) - {"display_name", "description"}
    if unknown:
        raise Invalid(f"These fields cannot be changed: {', '.join(sorted(unknown))}.",
                      {"fields": sorted(unknown)})
    if "display_name" in data:
        app.display_name = _text(data, "display_name", 128) or app.name
    if "description" in data:
        app.description = _text(data, "description", 4000)
    db.flush()
    return app


def role_of(db: Session, app: Application, user_id: int) -> str | None:
    return db.scalar(select(Member.role).where(Member.app_id == app.id, Member.user_id == user_id))


def check_role(role) -> str:
    if role not in ROLES:
        raise Invalid(f"'role' must be one of {', '.join(ROLES)}.", {"field": "role"})
    return role


def owners(db: Session, app: Application) -> int:
    """How many owners the app has, locking their rows so two concurrent
    demotions cannot both see "another owner is left"."""
    return len(list(db.scalars(select(Member.id).where(
        Member.app_id == app.id, Member.role == "owner").with_for_update())))


def set_member(db: Session, app: Application, user_id: int, username: str, role: str) -> tuple[str | None, str]:
    """Add or change a member; returns (old role, new role)."""
    check_role(role)
    member = db.scalar(select(Member).where(Member.app_id == app.id, Member.user_id == user_id)
                       .with_for_update())
    old = member.role if member else None
    if member is None:
        db.add(Member(app_id=app.id, user_id=user_id, username=username, role=role))
    else:
        if old == "owner" and role != "owner" and owners(db, app) <= 1:
            raise Conflict("The last owner cannot be demoted; make someone else owner first.",
                           {"app": app.name, "username": username})
        member.role = role
    db.flush()
    return old, role


def remove_member(db: Session, app: Application, username: str) -> Member:
    member = db.scalar(select(Member).where(Member.app_id == app.id, Member.username == username)
                       .with_for_update())
    if member is None:
        raise NotFound(f"{username!r} is not a member of {app.name!r}.", {"username": username})
    if member.role == "owner" and owners(db, app) <= 1:
        raise Conflict("The last owner cannot be removed; make someone else owner first.",
                       {"app": app.name, "username": username})
    db.delete(member)
    db.flush()
    return member
