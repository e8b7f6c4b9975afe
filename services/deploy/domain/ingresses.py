"""An ingress's lifecycle: made, changed, deployed, deleted — plain SQLAlchemy, no nameko.

* Hosts. ``host`` is what every cluster serves unless ``hosts`` names one for its
  environment (``{"test": ..., "prod": ...}``). Each host is the app's alone
  (``claim_host``: 409 ``host_taken``; wildcards for platform admins). A change or a
  delete frees the hosts no other ingress of the app still names.
* Routes. A route that names a version goes to that version's Service; one without goes
  to the service's stable Service (``names.routed_name``), i.e. to its routed version. The
  port, unless the route gives one, is the Service's: the version's (for a route without
  one: the service's newest version's) ``values.service_port``, else 80 — the built-in
  template's Service port, which the stable Service keeps.
* A change is stored and checked (it must render), but not deployed: deploy the ingress
  again to bring it to the clusters. A delete removes it from every cluster it was last
  applied to, as a ``delete`` record.
* A host stays the app's while one of its ingresses names it or still serves it on a
  cluster: a host changed away is freed once the change is deployed wherever the old one
  was served (or the ingress is deleted).
* Where a deploy goes when not told: every cluster where a version its routes name (or,
  for a route without one, any version of the service) was applied.
"""
from __future__ import annotations

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.deploy.domain import catalog, manifests, policy, records, rendering
from services.deploy.domain.ingress_config import check_ingress
from services.deploy.domain.templates import TemplateRefused
from services.deploy.models import HostOwner, Ingress, Record, Target, Version
from shared.errors import AlreadyExists, Conflict, Forbidden, HostTaken, Invalid, NotFound

DEFAULT_PORT = 80


def check(data, ctx: policy.Context | None, partial: bool = False, name: str | None = None) -> dict:
    ctx = ctx or policy.Context()
    return check_ingress(data, partial, name, ctx.issuers("cert-manager.io/issuer"),
                         ctx.issuers("cert-manager.io/cluster-issuer"))


def hosts_of(config: dict) -> set[str]:
    return {config["host"], *(config.get("hosts") or {}).values()}


# -- hosts -----------------------------------------------------------------------------

def _covers(wildcard: str, host: str) -> bool:
    """``*.example.com`` covers ``shop.example.com`` (one label, as ingress controllers match)."""
    return wildcard.startswith("*.") and host.count(".") == wildcard.count(".") and \
        host.split(".", 1)[1] == wildcard[2:]


def claim_host(db: Session, app: str, host: str, is_admin: bool) -> None:
    """A host belongs to one app, whatever the path: another app's ingress on it, or a
    wildcard of another app covering it (or covered by it), is 409 ``host_taken``. Wildcard
    hosts are for platform admins. The claim is a unique row, so a race has one winner."""
    if host.startswith("*.") and not is_admin:
        raise Forbidden("Wildcard hosts are for platform admins; ask one, or name the host.", {"host": host})
    owner = db.scalar(select(HostOwner.app).where(HostOwner.host == host))
    if owner is None:
        parent = "*." + host.split(".", 1)[1] if "." in host and not host.startswith("*.") else None
        clash = db.scalar(select(HostOwner.app).where(HostOwner.host == parent, HostOwner.app != app)) \
            if parent else None
        if clash is None and host.startswith("*."):
            clash = next((a for h, a in db.execute(select(HostOwner.host, HostOwner.app).where(
                HostOwner.host.like("%." + host[2:]), HostOwner.app != app)) if _covers(host, h)), None)
        if clash is not None:
            raise HostTaken(f"The host {host!r} is covered by another application's ingress.", {"host": host})
        try:
            with db.begin_nested():
                db.add(HostOwner(host=host, app=app))
        except IntegrityError:
            owner = db.scalar(select(HostOwner.app).where(HostOwner.host == host))
    if owner is not None and owner != app:
        raise HostTaken(f"The host {host!r} belongs to another application.", {"host": host})


def _hosts_in(objects) -> set[str]:
    """The hosts the Ingresses among ``objects`` serve."""
    found = set()
    for obj in objects or []:
        spec = (obj.get("spec") or {}) if isinstance(obj, dict) and obj.get("kind") == "Ingress" else {}
        found |= {r.get("host") for r in spec.get("rules") or [] if isinstance(r, dict) and r.get("host")}
        found |= {h for t in spec.get("tls") or [] if isinstance(t, dict) for h in t.get("hosts") or []}
    return found


def _latest_targets(db: Session, app: str, name: str | None = None):
    """Per (ingress, cluster), the latest target of the app's ingress records (or of ingress
    ``name``): rows of ``(ingress, cluster, env, action, manifests)``, by cluster."""
    latest = (select(func.max(Target.id)).join(Record, Record.id == Target.record_id)
              .where(Record.app == app, Record.subject == "ingress", Record.deleted_app_id.is_(None)))
    if name is not None:
        latest = latest.where(Record.ingress == name)
    return db.execute(select(Record.ingress, Target.cluster, Target.env, Target.action, Target.manifests)
                      .join(Record, Record.id == Target.record_id)
                      .where(Target.id.in_(latest.group_by(Record.ingress, Target.cluster)))
                      .order_by(Target.cluster))


def live_hosts(db: Session, app: str, name: str | None = None) -> set[str]:
    """The hosts the app's ingresses (or ingress ``name``) serve where their last action was an apply."""
    return set().union(*(_hosts_in(stored) for _, _, _, action, stored in _latest_targets(db, app, name)
                         if action == "apply" and stored))


def free_hosts(db: Session, app: str, hosts: set[str]) -> list[str]:
    """Give up those of ``hosts`` no ingress of ``app`` names nor serves on a cluster any more
    (a changed host stays the app's until the change is deployed where the old one was served);
    the freed ones, sorted."""
    if not hosts:
        return []
    still = live_hosts(db, app)
    for config in db.scalars(select(Ingress.config).where(Ingress.app == app)):
        still |= hosts_of(config)
    freed = sorted(hosts - still)
    if freed:
        db.execute(sql_delete(HostOwner).where(HostOwner.app == app, HostOwner.host.in_(freed)))
    return freed


# -- routes and rendering --------------------------------------------------------------

def _service_port(version: Version | None) -> int:
    port = ((version.config if version is not None else {}).get("values") or {}).get("service_port")
    return port if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 else DEFAULT_PORT


def _newest_version(db: Session, app: str, service: str) -> Version | None:
    return db.scalar(select(Version).where(Version.app == app, Version.service == service,
                                           Version.deleted_at.is_(None)).order_by(Version.id.desc()).limit(1))


def check_routes(db: Session, app: str, routes: list[dict]) -> None:
    """Each route's version (or, without one, its service) exists."""
    for i, route in enumerate(routes):
        try:
            if route.get("version"):
                catalog.get_version(db, app, route["service"], route["version"])
            else:
                catalog.get_service(db, app, route["service"])
        except NotFound:
            target = f"{route['service']}/{route['version']}" if route.get("version") else \
                f"service {route['service']!r}"
            raise Invalid(f"Route {i + 1} points at {target}, which does not exist.", {"field": f"routes[{i}]"})


def with_ports(db: Session, app: str, config: dict) -> dict:
    """The config with each route's backend port filled in (see the module's doc)."""
    routes = []
    for route in config["routes"]:
        port = route.get("port")
        if not port:
            version = db.scalar(select(Version).where(
                Version.app == app, Version.service == route["service"], Version.name == route["version"],
                Version.deleted_at.is_(None))) if route.get("version") else _newest_version(db, app, route["service"])
            port = _service_port(version)
        routes.append({**route, "port": port})
    return {**config, "routes": routes}


def render(db: Session, app: str, name: str, config: dict, ctx: policy.Context | None,
           env: str | None = None) -> list[dict]:
    template = catalog.resolve_template(db, app, "ingress", config.get("template"))
    try:
        return rendering.render_ingress(template, app, {"name": name, **with_ports(db, app, config)}, ctx, env)
    except TemplateRefused as exc:
        raise rendering.refusal(exc, f"The ingress does not render with template {template['name']!r}:",
                                {"field": "template", "template": template["name"]})


def _check_renders(db: Session, app: str, name: str, config: dict, ctx) -> None:
    for env in (None, *sorted(config.get("hosts") or {})):
        render(db, app, name, config, ctx, env)


# -- lifecycle -------------------------------------------------------------------------

def create(db: Session, app: str, data, actor: str, ctx=None, is_admin: bool = False) -> Ingress:
    config = check(data, ctx)
    name = config.pop("name")
    if db.scalar(select(Ingress.id).where(Ingress.app == app, Ingress.name == name)):
        raise AlreadyExists(f"An ingress called {name!r} exists already in {app!r}.", {"ingress": name})
    check_routes(db, app, config["routes"])
    for host in sorted(hosts_of(config)):
        claim_host(db, app, host, is_admin)
    _check_renders(db, app, name, config, ctx)
    ingress = Ingress(app=app, name=name, config=config, created_by=actor)
    db.add(ingress)
    db.flush()
    return ingress


def update(db: Session, app: str, name: str, data, ctx=None, is_admin: bool = False) -> tuple[Ingress, dict]:
    """``(the ingress, what changed: the fields, the new hosts, tls and routes, the hosts
    freed)`` for the audit log. Not deployed."""
    ingress = catalog.get_ingress(db, app, name)
    changes = check(data, ctx, partial=True, name=name)
    before = {"hosts": {}, "tls": None, **ingress.config}
    config = {**before, **changes}
    if "routes" in changes:
        check_routes(db, app, config["routes"])
    for host in sorted(hosts_of(config) - hosts_of(before)):
        claim_host(db, app, host, is_admin)
    _check_renders(db, app, name, config, ctx)
    ingress.config = config
    db.flush()
    freed = free_hosts(db, app, hosts_of(before) - hosts_of(config))
    changed = sorted(k for k, v in changes.items() if before.get(k) != v)
    shown = {k: config.get(k) for k in changed if k in ("host", "hosts", "tls", "routes", "template")}
    return ingress, {"changed": changed, **shown, "hosts_freed": freed}


def deployed_clusters(db: Session, app: str, name: str) -> list[dict]:
    """``[{"name", "env", "manifests"}]``: where the ingress's last action was an apply."""
    return [{"name": cluster, "env": env, "manifests": stored}
            for _, cluster, env, action, stored in _latest_targets(db, app, name) if action == "apply"]


def service_clusters(db: Session, app: str, name: str) -> list[dict]:
    """``[{"name", "env"}]``: where the services its routes name run (see the module's doc)."""
    ingress = catalog.get_ingress(db, app, name)
    found: dict[str, str] = {}
    for route in ingress.config["routes"]:
        versions = [route["version"]] if route.get("version") else db.scalars(select(Version.name).where(
            Version.app == app, Version.service == route["service"], Version.deleted_at.is_(None)))
        for version in versions:
            for cluster in records.clusters_of_version(db, app, route["service"], version):
                found[cluster["name"]] = cluster["env"]
    return [{"name": c, "env": e} for c, e in sorted(found.items())]


def deploy(db: Session, app: str, name: str, clusters, actor: str,
           ctx: policy.Context) -> tuple[Record, records.PendingEvents, list[str]]:
    """A deploy record — each cluster gets the ingress as its environment renders it (its
    host) — and the hosts it served before that nothing holds any more, freed."""
    ingress = catalog.get_ingress(db, app, name)
    served = live_hosts(db, app, name)
    envs = {c["name"]: c.get("env") for c in clusters}
    rendered = {env: render(db, app, name, ingress.config, ctx, env) for env in set(envs.values())}
    shown = ", ".join(f"{c['name']}: {rendering.host_for(ingress.config, c.get('env'))}" for c in clusters)
    record, outbox = records.create_record(
        db, app=app, action="deploy", subject="ingress", clusters=clusters, actor=actor,
        render=lambda record_id, cluster: rendered[envs[cluster]],
        object_name=name, ingress=name, intro=f"deploy of ingress {name} ({shown}) requested by {actor}")
    return record, outbox, free_hosts(db, app, served - hosts_of(ingress.config))


def delete(db: Session, app: str, name: str,
           actor: str) -> tuple[Record | None, list[dict], records.PendingEvents | None, list[str]]:
    """The ingress is gone at once and its hosts freed; where it was applied, a delete record
    removes its objects: ``(record or None, clusters, outbox or None, hosts freed)``."""
    ingress = catalog.get_ingress(db, app, name)
    hosts = hosts_of(ingress.config)
    hosts |= live_hosts(db, app, name)
    clusters = deployed_clusters(db, app, name)
    db.delete(ingress)
    db.flush()
    if not clusters:
        return None, [], None, free_hosts(db, app, hosts)
    latest = {c["name"]: c["manifests"] for c in clusters}
    targets = [{"name": c["name"], "env": c["env"]} for c in clusters]
    record, outbox = records.create_record(
        db, app=app, action="delete", subject="ingress", clusters=targets, actor=actor,
        render=lambda record_id, cluster: [manifests.identity(o) for o in latest.get(cluster) or []],
        object_name=name, ingress=name, target_action="delete",
        intro=f"delete of ingress {name} requested by {actor}")
    return record, targets, outbox, free_hosts(db, app, hosts)


def check_rollback(db: Session, app: str, name: str, stored: dict[str, list]) -> None:
    """Before a rollback re-applies an ingress record's ``stored`` manifests: the ingress still
    exists (a deleted one is created again, not rolled back to), and every host they serve is
    the app's — taken again if it was freed meanwhile, 409 ``host_taken`` if another app has it."""
    try:
        catalog.get_ingress(db, app, name)
    except NotFound:
        raise Conflict(f"Ingress {name!r} was deleted; create it again and deploy it.", {"ingress": name})
    for host in sorted(set().union(*(_hosts_in(objects) for objects in stored.values()))):
        claim_host(db, app, host, is_admin=True)  # a wildcard there was an admin's to make


__all__ = ["check", "check_rollback", "claim_host", "create", "update", "delete", "deploy",
           "deployed_clusters", "service_clusters", "free_hosts", "hosts_of", "live_hosts", "with_ports"]
