"""Shipping a version to users: ``mae route``, ``restart``, ``scale``, ``retire``, and what
decides who reaches it: ``mae ingresses``, ``mae members``, ``mae ci``.

Every request that makes a deploy record carries an Idempotency-Key (``Client.create``), so a
lost answer is retried without a second record; ``--wait`` follows the record like
``mae deploy --wait`` (exit 3 when it failed, 4 when it did not finish in time).
"""
from __future__ import annotations

import click

from mae_cli.common import Ctx, command, emit, emit_fields, emit_list, pass_ctx, q, split_ref, started

# -- where: --env or --cluster, and --wait ---------------------------------------------------



def waiting(fn):
    """``--wait`` and ``--timeout``."""
    fn = click.option("--timeout", default=600, show_default=True, help="Seconds --wait waits.")(fn)
    return click.option("--wait", is_flag=True, help="Follow the record until it finishes; non-zero exit on "
                                                     "failure.")(fn)


def where(fn):
    """``--env test|prod`` / ``--cluster NAME`` (repeatable), ``--wait`` and ``--timeout``."""
    fn = waiting(fn)
    fn = click.option("--cluster", "clusters", multiple=True, help="A cluster by name (repeat for several).")(fn)
    return click.option("--env", "env", type=click.Choice(["test", "prod"]),
                        help="Every cluster of this environment.")(fn)


def where_body(env, clusters) -> dict:
    if bool(env) == bool(clusters):
        raise click.UsageError("Give either --env or --cluster.")
    return {"env": env} if env else {"clusters": list(clusters)}


def version_path(ref: str) -> tuple[str, str]:
    app_name, svc, ver = split_ref(ref, 3, "APP/SERVICE/VERSION")
    return app_name, f"/apps/{q(app_name)}/services/{q(svc)}/versions/{q(ver)}"


@command(None, "route")
@click.argument("ref", metavar="APP/SERVICE")
@click.argument("version", required=False)
@click.option("--stop", is_flag=True, help="Stop routing the service's traffic there (instead of VERSION).")
@where
@pass_ctx
def route(ctx: Ctx, ref, version, stop, env, clusters, wait, timeout):
    """Send the service's traffic to VERSION on --env test|prod or --cluster NAME."""
    app_name, svc = split_ref(ref, 2, "APP/SERVICE")
    if bool(version) == stop:
        raise click.UsageError("Give either VERSION or --stop.")
    body = {"version": None if stop else version, **where_body(env, clusters)}
    answer = ctx.client.create(f"/apps/{q(app_name)}/services/{q(svc)}/route", body)
    started(ctx, answer, f"Routing {ref} to {version}" if version else f"Stopping traffic to {ref}", wait, timeout)


def version_action(action: str, doing: str, doc: str) -> click.Command:
    """``mae ACTION APP/SVC/VER --env|--cluster [--wait]``: POST .../ACTION, a record."""
    @command(None, action, help=doc)
    @click.argument("ref", metavar="APP/SERVICE/VERSION")
    @where
    @pass_ctx
    def run(ctx: Ctx, ref, env, clusters, wait, timeout):
        answer = ctx.client.create(f"{version_path(ref)[1]}/{action}", where_body(env, clusters))
        started(ctx, answer, f"{doing} {ref}", wait, timeout)
    return run


restart = version_action("restart", "Restarting", "Restart a version's pods, rolling (like kubectl rollout restart).")
retire = version_action("retire", "Retiring", "Remove a version's objects from clusters (refused while it gets "
                                              "traffic).")


@command(None, "scale")
@click.argument("ref", metavar="APP/SERVICE/VERSION")
@click.argument("replicas", type=click.IntRange(0, 50))
@where
@pass_ctx
def scale(ctx: Ctx, ref, replicas, env, clusters, wait, timeout):
    """Set how many pods a version runs."""
    answer = ctx.client.create(f"{version_path(ref)[1]}/scale", {"replicas": replicas, **where_body(env, clusters)})
    started(ctx, answer, f"Scaling {ref} to {replicas}", wait, timeout)


# -- ingresses -------------------------------------------------------------------------------

ingresses = click.Group("ingresses", help="Ingresses: a host (or one per environment), TLS and routes.")


def parse_route(text: str) -> dict:
    """``PATH=SERVICE[:VERSION][@PORT]`` → a route body."""
    path, sep, rest = text.partition("=")
    if not sep or not path.startswith("/") or not rest:
        raise click.BadParameter(f"expected PATH=SERVICE[:VERSION][@PORT], got {text!r}", param_hint="--route")
    rest, _, port = rest.partition("@")
    service, _, version = rest.partition(":")
    body = {"path": path, "service": service}
    if version:
        body["version"] = version
    if port:
        if not port.isdigit():
            raise click.BadParameter(f"the port in {text!r} must be a number", param_hint="--route")
        body["port"] = int(port)
    return body


def ingress_options(fn):
    for option in reversed((
            click.option("--host", help="The host every cluster serves (unless --host-test/--host-prod)."),
            click.option("--host-test", help="The host clusters of env test serve."),
            click.option("--host-prod", help="The host clusters of env prod serve."),
            click.option("--tls-secret", help="TLS from this Secret (or where cert-manager puts it)."),
            click.option("--tls-issuer", help="TLS from this cert-manager Issuer."),
            click.option("--tls-cluster-issuer", help="TLS from this cert-manager ClusterIssuer."),
            click.option("--route", "routes", multiple=True, metavar="PATH=SERVICE[:VERSION][@PORT]",
                         help="A route (repeat); without VERSION it follows the service's routed version."))):
        fn = option(fn)
    return fn


def ingress_body(host, host_test, host_prod, tls_secret, tls_issuer, tls_cluster_issuer, routes) -> dict:
    body: dict = {}
    if host is not None:
        body["host"] = host
    if host_test or host_prod:
        body["hosts"] = {env: h for env, h in (("test", host_test), ("prod", host_prod)) if h}
    if tls_issuer and tls_cluster_issuer:
        raise click.UsageError("Give --tls-issuer or --tls-cluster-issuer, not both.")
    tls = {k: v for k, v in (("secret_name", tls_secret), ("issuer", tls_issuer),
                             ("cluster_issuer", tls_cluster_issuer)) if v}
    if tls:
        body["tls"] = tls
    if routes:
        body["routes"] = [parse_route(r) for r in routes]
    return body


def ingress_fields(ing: dict) -> None:
    routes = ", ".join(f"{r.get('path')}→{r.get('service')}" + (f":{r['version']}" if r.get("version") else "")
                       + (f"@{r['port']}" if r.get("port") else "") for r in ing.get("routes") or [])
    hosts = ing.get("hosts") or {}
    emit_fields(ing, [("name", ing.get("name", "")), ("host", ing.get("host") or ""),
                      ("hosts", ", ".join(f"{e}={h}" for e, h in hosts.items() if h)),
                      ("tls", (ing.get("tls") or {}).get("secret_name") or ""), ("routes", routes),
                      ("clusters", ", ".join(c.get("name", "") for c in ing.get("clusters") or []))])


@command(ingresses, "list")
@click.argument("app_name", metavar="APP")
@pass_ctx
def ingresses_list(ctx: Ctx, app_name):
    """Ingresses of APP."""
    emit_list(ctx.client.list_all(f"/apps/{q(app_name)}/ingresses"), ("NAME", "HOST", "TLS", "ROUTES"),
              lambda i: (i["name"], i.get("host") or "", (i.get("tls") or {}).get("secret_name") or "",
                         str(len(i.get("routes") or []))))


@command(ingresses, "show")
@click.argument("ref", metavar="APP/INGRESS")
@pass_ctx
def ingresses_show(ctx: Ctx, ref):
    """An ingress and the clusters it was last applied to."""
    app_name, name = split_ref(ref, 2, "APP/INGRESS")
    ingress_fields(ctx.client.get(f"/apps/{q(app_name)}/ingresses/{q(name)}"))


@command(ingresses, "create")
@click.argument("ref", metavar="APP/INGRESS")
@ingress_options
@pass_ctx
def ingresses_create(ctx: Ctx, ref, **options):
    """Create an ingress (then `mae ingresses deploy` brings it to the clusters)."""
    app_name, name = split_ref(ref, 2, "APP/INGRESS")
    body = {"name": name, **ingress_body(**options)}
    if not body.get("routes"):
        raise click.UsageError("Give at least one --route PATH=SERVICE[:VERSION][@PORT].")
    body.setdefault("host", "")
    created = ctx.client.post(f"/apps/{q(app_name)}/ingresses", body)
    emit(created, text=f"Ingress {app_name}/{created.get('name', name)} created; deploy it with "
                       f"`mae ingresses deploy {app_name}/{name}`.")


@command(ingresses, "update")
@click.argument("ref", metavar="APP/INGRESS")
@ingress_options
@pass_ctx
def ingresses_update(ctx: Ctx, ref, **options):
    """Change an ingress (stored, not deployed: deploy it again). --route replaces all routes."""
    app_name, name = split_ref(ref, 2, "APP/INGRESS")
    body = ingress_body(**options)
    if not body:
        raise click.UsageError("Nothing to change: give --host, --host-test/--host-prod, --tls-* or --route.")
    changed = ctx.client.patch(f"/apps/{q(app_name)}/ingresses/{q(name)}", body)
    emit(changed, text=f"Ingress {ref} changed; deploy it again to bring the change to the clusters.")


@command(ingresses, "delete")
@click.argument("ref", metavar="APP/INGRESS")
@waiting
@pass_ctx
def ingresses_delete(ctx: Ctx, ref, wait, timeout):
    """Delete an ingress and remove it from every cluster it was applied to."""
    app_name, name = split_ref(ref, 2, "APP/INGRESS")
    answer = ctx.client.delete(f"/apps/{q(app_name)}/ingresses/{q(name)}") or {}
    if answer.get("record_id") is None:
        emit(answer, text=f"Ingress {ref} deleted (it was on no cluster).")
        return
    started(ctx, answer, f"Deleting ingress {ref}", wait, timeout)


@command(ingresses, "deploy")
@click.argument("ref", metavar="APP/INGRESS")
@where
@pass_ctx
def ingresses_deploy(ctx: Ctx, ref, env, clusters, wait, timeout):
    """Deploy an ingress to --env/--cluster, or (with neither) where its services run."""
    app_name, name = split_ref(ref, 2, "APP/INGRESS")
    body = where_body(env, clusters) if env or clusters else {}
    answer = ctx.client.create(f"/apps/{q(app_name)}/ingresses/{q(name)}/deploy", body)
    started(ctx, answer, f"Deploying ingress {ref}", wait, timeout)


# -- members -------------------------------------------------------------------------------

members = click.Group("members", help="Who may do what in an application.")


@command(members, "list")
@click.argument("app_name", metavar="APP")
@pass_ctx
def members_list(ctx: Ctx, app_name):
    """Members of APP and their roles."""
    emit_list(ctx.client.list_all(f"/apps/{q(app_name)}/members"), ("USER", "ROLE"),
              lambda m: (m.get("username", ""), m.get("role", "")))


@command(members, "set")
@click.argument("app_name", metavar="APP")
@click.argument("user")
@click.option("--role", required=True, type=click.Choice(["viewer", "developer", "maintainer", "owner"]))
@pass_ctx
def members_set(ctx: Ctx, app_name, user, role):
    """Add USER to APP or change their role (owners)."""
    answer = ctx.client.put(f"/apps/{q(app_name)}/members/{q(user)}", {"role": role})
    emit(answer, text=f"{user} is now {role} of {app_name}.")


@command(members, "remove")
@click.argument("app_name", metavar="APP")
@click.argument("user")
@pass_ctx
def members_remove(ctx: Ctx, app_name, user):
    """Remove USER from APP (owners)."""
    ctx.client.delete(f"/apps/{q(app_name)}/members/{q(user)}")
    emit({"app": app_name, "username": user, "removed": True}, text=f"{user} removed from {app_name}.")


# -- ci ------------------------------------------------------------------------------------

ci = click.Group("ci", help="A service's CI link and builds.")


def service_path(ref: str) -> str:
    app_name, svc = split_ref(ref, 2, "APP/SERVICE")
    return f"/apps/{q(app_name)}/services/{q(svc)}"


def link_fields(link: dict) -> None:
    keys = ("provider", "server", "repo", "image", "auto_deploy_env", "auto_route", "webhook_url", "updated_by",
            "updated_at")
    emit_fields(link, [(k, "" if link.get(k) is None else str(link[k])) for k in keys])


@command(ci, "show")
@click.argument("ref", metavar="APP/SERVICE")
@pass_ctx
def ci_show(ctx: Ctx, ref):
    """The service's CI link (never its secrets)."""
    link_fields(ctx.client.get(f"{service_path(ref)}/ci"))


@command(ci, "link")
@click.argument("ref", metavar="APP/SERVICE")
@click.option("--provider", default="drone", show_default=True, type=click.Choice(["drone"]))
@click.option("--server", required=True, help="The CI server's URL.")
@click.option("--repo", required=True, help="The repository, e.g. team/web.")
@click.option("--token", required=True, help="The CI's API token (kept sealed by MAE).")
@click.option("--image", required=True, help="The image the CI builds (a tag's build becomes a version).")
@click.option("--webhook-secret", help="The secret the CI signs its webhooks with.")
@click.option("--auto-deploy-env", type=click.Choice(["test", "prod"]), help="Deploy each built version there.")
@click.option("--auto-route", is_flag=True, help="After that deploy succeeds, route the traffic to it.")
@pass_ctx
def ci_link(ctx: Ctx, ref, provider, server, repo, token, image, webhook_secret, auto_deploy_env, auto_route):
    """Link a service to its CI repository; prints the webhook URL to give the CI."""
    body = {"provider": provider, "server": server, "repo": repo, "token": token, "image": image,
            "auto_deploy_env": auto_deploy_env, "auto_route": auto_route}
    if webhook_secret:
        body["webhook_secret"] = webhook_secret
    link = ctx.client.put(f"{service_path(ref)}/ci", body)
    url = link.get("webhook_url") or ""
    if url.startswith("/"):
        url = ctx.client.settings.url + url
    emit(link, text=f"{ref} linked to {repo}. Point the CI's webhook at {url}")


@command(ci, "unlink")
@click.argument("ref", metavar="APP/SERVICE")
@pass_ctx
def ci_unlink(ctx: Ctx, ref):
    """Unlink a service from its CI repository."""
    ctx.client.delete(f"{service_path(ref)}/ci")
    emit({"unlinked": ref}, text=f"{ref} unlinked from its CI.")


@command(ci, "builds")
@click.argument("ref", metavar="APP/SERVICE")
@pass_ctx
def ci_builds(ctx: Ctx, ref):
    """Recent builds of the linked repository."""
    emit_list(ctx.client.get(f"{service_path(ref)}/builds").get("items", []),
              ("NUMBER", "STATUS", "EVENT", "REF", "COMMIT", "CREATED"),
              lambda b: (str(b.get("number")), b.get("status", ""), b.get("event") or "", b.get("ref") or "",
                         (b.get("commit") or "")[:12], b.get("created_at") or ""))


@command(ci, "build")
@click.argument("ref", metavar="APP/SERVICE")
@click.option("--ref", "git_ref", required=True, help="The branch to build.")
@pass_ctx
def ci_build(ctx: Ctx, ref, git_ref):
    """Ask the CI to build a branch."""
    build = ctx.client.post(f"{service_path(ref)}/builds", {"ref": git_ref})
    emit(build, text=f"Build {build.get('number')} of {git_ref}: {build.get('status')}.")


COMMANDS = (route, restart, scale, retire, ingresses, members, ci)
