"""Services, versions, ingresses and templates of an application — plain SQLAlchemy, no nameko."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.deploy.domain import config as checks
from services.deploy.domain import catalog_templates, names, rendering, secret_env, templates
from services.deploy.domain.templates import TemplateRefused
from services.deploy.models import Ingress, Service, Template, Version
from shared.errors import AlreadyExists, Conflict, Invalid, NotFound
from shared.names import check_label
from shared.paging import page
from shared.timeutil import rfc3339, utcnow


# -- services --------------------------------------------------------------------

def service_dict(service: Service) -> dict:
    return {"name": service.name, "app": service.app, "description": service.description,
            "created_by": service.created_by, "created_at": rfc3339(service.created_at)}


def get_service(db: Session, app: str, name: str, lock: bool = False) -> Service:
    stmt = select(Service).where(Service.app == app, Service.name == name)
    found = db.scalar(stmt.with_for_update() if lock else stmt)
    if found is None:
        raise NotFound(f"Service {name!r} was not found in {app!r}.", {"app": app, "service": name})
    return found


def create_service(db: Session, app: str, data, actor: str) -> Service:
    data = checks.check_service(data)
    if db.scalar(select(Service.id).where(Service.app == app, Service.name == data["name"])):
        raise AlreadyExists(f"A service called {data['name']!r} exists already in {app!r}.",
                            {"service": data["name"]})
    _check_object_names(db, app, data["name"], None)
    service = Service(app=app, name=data["name"], description=data["description"], created_by=actor)
    db.add(service)
    db.flush()
    return service


def _check_object_names(db: Session, app: str, service: str, version: str | None) -> None:
    """A service's stable Service is named ``<service>`` (``names.routed_name``) and a version's
    objects ``<service>-<version>``: refuse a name that would make the two meet in the
    namespace (service ``a-b`` beside version ``b`` of ``a``)."""
    if version is not None:
        taken = names.object_name(service, version)
        if db.scalar(select(Service.id).where(Service.app == app, Service.name == taken)):
            raise AlreadyExists(f"Version {version!r} of {service!r} would be named {taken!r} on the clusters, "
                                f"which is the name of service {taken!r}'s traffic; choose another name.",
                                {"field": "name", "version": version})
        return
    parts = service.split("-")
    for i in range(1, len(parts)):
        other, version = "-".join(parts[:i]), "-".join(parts[i:])
        if db.scalar(select(Version.id).where(Version.app == app, Version.service == other,
                                              Version.name == version, Version.deleted_at.is_(None))):
            raise AlreadyExists(f"Service {service!r} would share its name on the clusters with version "
                                f"{version!r} of {other!r}; choose another name.", {"field": "name"})


def list_services(db: Session, app: str, limit=None, cursor=None) -> dict:
    return page(db, select(Service).where(Service.app == app), Service.id, limit, cursor, service_dict)


def service_view(db: Session, app: str, name: str, running: dict[str, list]) -> dict:
    """The service with its live versions, each with the clusters ``running`` it
    (``records.version_status``)."""
    service = get_service(db, app, name)
    versions = db.scalars(select(Version).where(Version.service_id == service.id,
                                                Version.deleted_at.is_(None)).order_by(Version.id))
    return {**service_dict(service),
            "versions": [{**version_dict(v), "clusters": running.get(v.name, [])} for v in versions]}


def delete_service(db: Session, app: str, name: str) -> None:
    service = get_service(db, app, name, lock=True)
    live = db.scalar(select(Version.name).where(Version.service_id == service.id,
                                                Version.deleted_at.is_(None)).limit(1))
    if live:
        raise Conflict(f"Service {name!r} still has versions (e.g. {live!r}); delete them first, "
                       "which also removes them from the clusters.", {"service": name, "version": live})
    db.delete(service)
    db.flush()


# -- versions --------------------------------------------------------------------

def version_dict(version: Version) -> dict:
    """A version as answers show it: ``secret_env`` is its names only, never a value."""
    return {"name": version.name, "app": version.app, "service": version.service, **version.config,
            "secret_env": secret_env.names_of(version),
            "created_by": version.created_by, "created_at": rfc3339(version.created_at),
            "updated_at": rfc3339(version.updated_at),
            "deleted_at": rfc3339(version.deleted_at)}


def get_version(db: Session, app: str, service: str, name: str, include_deleted: bool = False) -> Version:
    version = db.scalar(select(Version).where(Version.app == app, Version.service == service,
                                              Version.name == name))
    if version is None or (version.deleted_at is not None and not include_deleted):
        raise NotFound(f"Version {name!r} of service {service!r} was not found.",
                       {"app": app, "service": service, "version": name})
    return version


def list_versions(db: Session, app: str, service: str, limit=None, cursor=None) -> dict:
    get_service(db, app, service)
    stmt = select(Version).where(Version.app == app, Version.service == service, Version.deleted_at.is_(None))
    return page(db, stmt, Version.id, limit, cursor, version_dict)


def secret_env_before(version: Version) -> tuple[list[str], str | None]:
    """What ``secret_env_change`` compares a changed version with."""
    return secret_env.names_of(version), version.secret_env_sealed


def secret_env_change(version: Version, before: tuple[list[str], str | None]) -> dict | None:
    """The audit details of a change of the version's secret_env — by name: which were
    added or removed, and that the set changed; never a value. ``None``: unchanged."""
    names_before, sealed_before = before
    if version.secret_env_sealed == sealed_before:
        return None
    after = secret_env.names_of(version)
    return {"names": after, "added": sorted(set(after) - set(names_before)),
            "removed": sorted(set(names_before) - set(after))}


def _check_renders(db: Session, app: str, service: str, version: str, config: dict, ctx=None,
                   secret: dict | None = None) -> None:
    """A version whose template does not render, or renders what the policy refuses, is
    refused now, not at deploy time."""
    template = resolve_template(db, app, "version", config.get("template"))
    try:
        rendering.render_version(template, app, service, version, config, ctx, secret)
    except TemplateRefused as exc:
        raise rendering.refusal(exc, f"The version does not render with template {template['name']!r}:",
                                {"field": "template", "template": template["name"]})


def _split_secret_env(data):
    """``(the body without secret_env, its checked set or None when absent)``."""
    if isinstance(data, dict) and secret_env.FIELD in data:
        data = dict(data)
        return data, secret_env.check(data.pop(secret_env.FIELD))
    return data, None


def create_version(db: Session, app: str, service_name: str, data, actor: str, ctx=None,
                   box=None) -> Version:
    """``box`` (the secret box) seals a body's ``secret_env``."""
    service = get_service(db, app, service_name)
    data, secrets = _split_secret_env(data)
    config = checks.check_version(data)
    name = config.pop("name")
    existing = db.scalar(select(Version).where(Version.service_id == service.id, Version.name == name))
    if existing is not None and existing.deleted_at is None:
        raise AlreadyExists(f"Version {name!r} of {service_name!r} exists already.",
                            {"service": service_name, "version": name})
    _check_object_names(db, app, service_name, name)
    secrets = secrets or {}
    secret_env.check_apart(config["env"], secrets)
    _check_renders(db, app, service_name, name, config, ctx, secret_env.shape(None, service_name, name, secrets))
    if existing is not None:  # a deleted version's name is free again (its secrets went with it)
        existing.config, existing.deleted_at, existing.created_by = config, None, actor
        existing.created_at = existing.updated_at = utcnow()
        secret_env.forget(existing)
        version = existing
    else:
        version = Version(service_id=service.id, app=app, service=service_name, name=name, config=config,
                          created_by=actor)
        db.add(version)
    db.flush()  # the row's id first: the secrets are sealed bound to it
    if secrets:
        secret_env.store(box, version, secrets)
    db.flush()
    return version


def update_version(db: Session, app: str, service: str, name: str, data, ctx=None, box=None) -> Version:
    """``secret_env`` is merged like a JSON merge patch (values cannot be read back, so a
    change names only what changes): a name with a value is set, a name with null is
    removed, names not given are kept; ``"secret_env": null`` removes them all."""
    version = get_version(db, app, service, name)
    raw = data.get(secret_env.FIELD) if isinstance(data, dict) else None
    data, secrets = _split_secret_env(data)
    if secrets is not None and isinstance(raw, dict):
        kept = {k: v for k, v in secret_env.values(box, version).items() if k not in raw}
        secrets = {**kept, **secrets}
    changes = checks.check_version(data, partial=True)
    config = checks.merge_version(version.config, changes)
    keys = set(secrets) if secrets is not None else set(secret_env.names_of(version))
    secret_env.check_apart(config.get("env") or [], keys)
    _check_renders(db, app, service, name, config, ctx,
                   secret_env.shape(version, service, name, sorted(keys) if secrets is not None else None))
    version.config = config
    secret_env.store(box, version, secrets)
    version.updated_at = utcnow()
    db.flush()
    return version


# -- ingresses ---------------------------------------------------------------------

def ingress_dict(ingress: Ingress) -> dict:
    return {"name": ingress.name, "app": ingress.app, "hosts": {}, **ingress.config, "created_by": ingress.created_by,
            "created_at": rfc3339(ingress.created_at)}


def list_ingresses(db: Session, app: str, limit=None, cursor=None) -> dict:
    return page(db, select(Ingress).where(Ingress.app == app), Ingress.id, limit, cursor, ingress_dict)


def get_ingress(db: Session, app: str, name: str) -> Ingress:
    found = db.scalar(select(Ingress).where(Ingress.app == app, Ingress.name == name))
    if found is None:
        raise NotFound(f"Ingress {name!r} was not found in {app!r}.", {"app": app, "ingress": name})
    return found


# Made, changed, deployed and deleted in ``ingresses``; their hosts are claimed there.


# -- templates -----------------------------------------------------------------------

def template_dict(template, with_body: bool = True) -> dict:
    if isinstance(template, dict):
        data = {k: template[k] for k in ("name", "kind", "fields", "description", "builtin", "app")}
        if with_body:
            data["body"] = template["body"]
        return data
    data = {"name": template.name, "kind": template.kind, "fields": template.fields, "description": "",
            "builtin": False, "app": template.app, "created_by": template.created_by,
            "created_at": rfc3339(template.created_at)}
    if with_body:
        data["body"] = template.body
    return data


def resolve_template(db: Session, app: str, kind: str, name: str | None) -> dict:
    """``{"name", "body", "fields"}`` of the named template (the built-in default if none)."""
    name = name or templates.DEFAULT[kind]
    if name in templates.BUILTINS:
        found = templates.BUILTINS[name]
    else:
        row = db.scalar(select(Template).where(Template.app == app, Template.name == name))
        if row is None:
            raise Invalid(f"There is no template called {name!r} in {app!r}.", {"field": "template"})
        found = {"name": row.name, "kind": row.kind, "body": row.body, "fields": row.fields}
    if found["kind"] != kind:
        raise Invalid(f"Template {name!r} is for {found['kind']}s, not {kind}s.", {"field": "template"})
    return found


def list_templates(db: Session, apps: list[str]) -> list[dict]:
    out = [template_dict(t) for t in templates.BUILTINS.values()]
    if apps:
        rows = db.scalars(select(Template).where(Template.app.in_(apps)).order_by(Template.app, Template.name))
        out.extend(template_dict(t) for t in rows)
    return out


def create_template(db: Session, app: str, data, actor: str, ctx=None) -> Template:
    data, kind, body, fields = catalog_templates.parts(data, catalog_templates.SAVED)
    name = check_label(data.get("name"), "name")
    if name in templates.BUILTINS:
        raise AlreadyExists(f"{name!r} is the name of a built-in template.", {"template": name})
    catalog_templates.render_samples(kind, body, fields, app, ctx)
    if db.scalar(select(Template.id).where(Template.app == app, Template.name == name)):
        raise AlreadyExists(f"A template called {name!r} exists already in {app!r}.", {"template": name})
    template = Template(app=app, name=name, kind=kind, body=body, fields=fields, created_by=actor)
    db.add(template)
    db.flush()
    return template
