"""An application's own templates: checked when saved, changed or previewed, and deleted.

Each check is the same one: the template renders, from sample values (a preview's own
values, if it gives them), objects the app's workload policy allows (``rendering.
check_with_samples``). A change or a delete also looks at what uses the template — the
app's live versions and its ingresses name it in their config — so neither leaves one
that cannot be deployed any more.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.deploy.domain import config as checks
from services.deploy.domain import rendering, templates
from services.deploy.domain.templates import TemplateRefused
from services.deploy.models import Ingress, Template, Version
from shared import redact
from shared.errors import Conflict, Invalid, NotFound

SAVED = {"name", "kind", "body", "fields"}  # the body of a create or a change
PREVIEWED = {"kind", "body", "fields", "values"}
USERS_NAMED = 5  # in a refusal, at most this many of the versions and ingresses that use a template


def parts(data, allowed: set[str]) -> tuple[dict, str, str, list[dict]]:
    """``(data, kind, body, fields)`` of a template's body, checked for shape (not rendered)."""
    data = checks.check_object(data)
    checks.check_unknown(data, allowed)
    kind = data.get("kind")
    if kind not in templates.KINDS:
        raise Invalid("'kind' must be 'version' or 'ingress'.", {"field": "kind"})
    body = data.get("body")
    if not isinstance(body, str) or not body.strip():
        raise Invalid("'body' must be the template's text.", {"field": "body"})
    return data, kind, body, templates.check_fields(data.get("fields"))


def render_samples(kind: str, body: str, fields: list[dict], app: str, ctx=None, values=None) -> list[dict]:
    """The objects the template renders from sample values; a refusal says why in plain words
    (a policy's: 422 ``policy_violation`` with its rule, object and path)."""
    try:
        return rendering.check_with_samples(kind, body, fields, app, ctx, values)
    except TemplateRefused as exc:
        raise rendering.refusal(exc, "The template is refused:", {"field": "body", "reason": str(exc)})


def preview(app: str, data, ctx=None) -> dict:
    """What the template renders, as a save would render it: ``{"manifests", "values"}`` —
    the manifests with every Secret value redacted, and the values the template saw (the
    fields' defaults with the given ``values`` over them)."""
    data, kind, body, fields = parts(data, PREVIEWED)
    given = data.get("values")
    if given is not None and not isinstance(given, dict):
        raise Invalid("'values' must be an object of the fields' values.", {"field": "values"})
    values = templates.resolve_values(fields, given)
    rendered = render_samples(kind, body, fields, app, ctx, given)
    return {"manifests": [redact.desired(m) for m in rendered], "values": values}


def get(db: Session, app: str, name: str, lock: bool = False) -> Template:
    if name in templates.BUILTINS:
        raise Invalid(f"{name!r} is a built-in template; it cannot be changed or deleted (start a template "
                      "of the application's own from it instead).", {"template": name})
    stmt = select(Template).where(Template.app == app, Template.name == name)
    found = db.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFound(f"Template {name!r} was not found in {app!r}.", {"app": app, "template": name})
    return found


def users(db: Session, app: str, name: str) -> tuple[list[Version], list[str]]:
    """The app's live versions and the names of its ingresses that render with template ``name``."""
    versions = db.scalars(select(Version).where(
        Version.app == app, Version.deleted_at.is_(None),
        Version.config["template"].as_string() == name).order_by(Version.service, Version.name)).all()
    ingresses = db.scalars(select(Ingress.name).where(
        Ingress.app == app, Ingress.config["template"].as_string() == name).order_by(Ingress.name)).all()
    return list(versions), list(ingresses)


def _named(versions: list[Version], ingresses: list[str]) -> tuple[str, list[str]]:
    found = [f"version {v.service}/{v.name}" for v in versions] + [f"ingress {i}" for i in ingresses]
    shown = ", ".join(found[:USERS_NAMED]) + (f" and {len(found) - USERS_NAMED} more" if len(found) > USERS_NAMED
                                              else "")
    return shown, found


def update(db: Session, app: str, name: str, data, ctx=None) -> tuple[Template, list[str]]:
    """The template changed (``kind``, ``body``, ``fields``: the whole of it, as it was made);
    ``(template, the names of what changed)``. Refused while something uses it and the change
    would not fit it: another kind, or fields its values are not of the type of."""
    template = get(db, app, name, lock=True)
    data, kind, body, fields = parts(data, SAVED)
    if "name" in data and data["name"] != name:
        raise Invalid(f"A template's name cannot be changed ('name' must be {name!r} or left out).",
                      {"field": "name"})
    versions, ingresses = users(db, app, name)
    if kind != template.kind and (versions or ingresses):
        shown, found = _named(versions, ingresses)
        raise Conflict(f"Template {name!r} is used by {shown}; it cannot become a template for {kind}s.",
                       {"template": name, "used_by": found[:USERS_NAMED]})
    for version in versions:
        try:
            templates.resolve_values(fields, version.config.get("values"))
        except Invalid as exc:
            raise Conflict(f"Version {version.service}/{version.name} uses template {name!r} and its values do "
                           f"not fit the new fields: {exc}", {"template": name,
                                                               "used_by": [f"version {version.service}/{version.name}"]})
    render_samples(kind, body, fields, app, ctx)
    changed = [k for k, v in (("kind", kind), ("body", body), ("fields", fields)) if getattr(template, k) != v]
    template.kind, template.body, template.fields = kind, body, fields
    db.flush()
    return template, changed


def delete(db: Session, app: str, name: str) -> str:
    """Delete the template unless a live version or an ingress uses it; its kind."""
    template = get(db, app, name, lock=True)
    versions, ingresses = users(db, app, name)
    if versions or ingresses:
        shown, found = _named(versions, ingresses)
        raise Conflict(f"Template {name!r} is used by {shown}; give them another template first.",
                       {"template": name, "used_by": found[:USERS_NAMED]})
    kind = template.kind
    db.delete(template)
    db.flush()
    return kind
