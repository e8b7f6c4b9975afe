"""``mae``: apps, services, versions, deploys, logs and rollbacks from a terminal.

Every command takes ``-o/--output json|yaml`` for scripts: then stdout carries only that
document, and anything meant for a person goes to stderr. Exit codes: 0 ok (also
``mae logout`` when the server could not be told: the token is forgotten here, with a
warning); 1 an error (the API's own message on stderr, under it the rule, object and path
of a workload policy's refusal; or a declined confirmation);
2 wrong usage; 3 a deploy or rollback that ended failed or superseded; 4 ``--wait``
gave up before the record finished.
"""
from __future__ import annotations

import json

import click

from mae_cli import admin, cluster_init, config
from mae_cli import account
from mae_cli import resources, runtime, shipping
from mae_cli.client import Client
from mae_cli.common import (OUTPUT, Ctx, command, emit, emit_fields, emit_list, err, pass_ctx, q, record_table,
                            split_ref, started, styled, table)


# -- the group -----------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@OUTPUT
@click.version_option("0.1.0", prog_name="mae")
def app():
    """MAE from the terminal. Set MAE_URL / MAE_TOKEN, or run `mae login`."""


# -- login ---------------------------------------------------------------------------

@command(app, "login")
@click.option("--url", help="MAE's address, e.g. http://127.0.0.1:8080 (kept in the config).")
@click.option("--token", help="A personal access token (else: log in with the browser, or paste one).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser; paste a token instead.")
@click.option("--timeout", default=300, show_default=True, help="Seconds to wait for the browser login.")
@pass_ctx
def login(ctx: Ctx, url, token, no_browser, timeout):
    """Log in: keep a token in ~/.config/mae/config.json (mode 0600)."""
    if url:
        config.save(url=url)
    settings = config.load()
    if url:
        settings.url = url.rstrip("/")
    if not token:
        from mae_cli.browser_login import browser_login

        token = browser_login(settings.url, open_browser=not no_browser, timeout=timeout, say=err.print)
    settings.token = token.strip()
    me = Client(settings).get("/me")
    path = config.save(url=settings.url, token=settings.token)
    emit({"url": settings.url, "user": me, "config": str(path)},
         text=f"Logged in to {settings.url} as {me['username']}. Token kept in {path}.")


@command(app, "logout")
def logout():
    """End the kept token on the server (a session, or revoke a personal token), then forget it.
    Without a reachable server it is still forgotten here, with a warning (exit 0)."""
    told, what = account.end_on_server(config.kept_token())
    path = config.save(forget_token=True)
    if not told:
        err.print(f"[yellow]Warning:[/yellow] {what}.", markup=True)
    emit({"config": str(path), "server_told": told, "server": what}, text=f"Token removed from {path}; {what}.")


@command(app, "whoami")
@pass_ctx
def whoami(ctx: Ctx):
    """Who the token belongs to."""
    me = ctx.client.get("/me")
    emit(me, text=f"{me['username']} ({me.get('display_name') or ''}){' admin' if me.get('is_admin') else ''}"
                  f" at {ctx.client.settings.url}")


# -- apps ----------------------------------------------------------------------------

def group(name: str, doc: str) -> click.Group:
    """A group of ``mae`` subcommands (``mae NAME ...``)."""
    made = click.Group(name, help=doc)
    app.add_command(made)
    return made


apps = group("apps", "Applications.")


def post_created(ctx: Ctx, path: str, body: dict, what: str) -> None:
    """POST ``body`` and say what was created (``what`` names it by ``{name}``)."""
    created = ctx.client.post(path, body)
    emit(created, text=f"{what.format(name=created.get('name', body['name']))} created.")


@command(apps, "list")
@pass_ctx
def apps_list(ctx: Ctx):
    """Applications you can see."""
    emit_list(ctx.client.list_all("/apps"), ("NAME", "DISPLAY NAME", "ROLE", "CREATED BY", "CREATED"),
              lambda a: (a["name"], a.get("display_name") or "", a.get("role") or "", a.get("created_by") or "",
                         a.get("created_at") or ""))


@command(apps, "create")
@click.argument("name")
@click.option("--display-name")
@click.option("--description")
@pass_ctx
def apps_create(ctx: Ctx, name, display_name, description):
    """Create an application (you become its owner)."""
    body = {"name": name}
    if display_name:
        body["display_name"] = display_name
    if description:
        body["description"] = description
    post_created(ctx, "/apps", body, "Application {name}")


@command(apps, "show")
@click.argument("name")
@pass_ctx
def apps_show(ctx: Ctx, name):
    """An application, with your role and its members."""
    detail = ctx.client.get(f"/apps/{q(name)}")
    members = ctx.client.list_all(f"/apps/{q(name)}/members")
    detail = {**detail, "members": members}
    keys = ("name", "display_name", "description", "role", "created_by", "created_at")
    emit_fields(detail, [(key, str(detail.get(key) or "")) for key in keys]
                + [("members", ", ".join(f"{m['username']} ({m['role']})" for m in members))])


# -- services ------------------------------------------------------------------------

services = group("services", "Services of an application.")


@command(services, "list")
@click.argument("app_name", metavar="APP")
@pass_ctx
def services_list(ctx: Ctx, app_name):
    """Services of APP."""
    emit_list(ctx.client.list_all(f"/apps/{q(app_name)}/services"), ("NAME", "DESCRIPTION", "CREATED"),
              lambda s: (s["name"], s.get("description") or "", s.get("created_at") or ""))


@command(services, "create")
@click.argument("ref", metavar="APP/SERVICE")
@click.option("--description")
@pass_ctx
def services_create(ctx: Ctx, ref, description):
    """Create a service."""
    app_name, name = split_ref(ref, 2, "APP/SERVICE")
    body = {"name": name, **({"description": description} if description else {})}
    post_created(ctx, f"/apps/{q(app_name)}/services", body, f"Service {app_name}/{{name}}")


@command(services, "show")
@click.argument("ref", metavar="APP/SERVICE")
@pass_ctx
def services_show(ctx: Ctx, ref):
    """A service with each version's status on every cluster."""
    app_name, name = split_ref(ref, 2, "APP/SERVICE")
    detail = ctx.client.get(f"/apps/{q(app_name)}/services/{q(name)}")
    t = table("VERSION", "IMAGE", "CLUSTERS")
    for v in detail.get("versions") or []:
        t.add_row(v.get("name", ""), v.get("image", ""), _statuses_text(v))
    emit(detail, t)


def _statuses_text(version: dict) -> str:
    raw = None
    for key in ("clusters", "status_by_cluster", "statuses", "targets", "deployments"):
        if version.get(key) is not None:
            raw = version[key]
            break
    pairs = []
    if isinstance(raw, list):
        pairs = [(i.get("cluster"), i.get("status")) for i in raw if isinstance(i, dict)]
    elif isinstance(raw, dict):
        pairs = [(k, v if isinstance(v, str) else (v or {}).get("status")) for k, v in raw.items()]
    return "  ".join(f"{c}={styled(s)}" for c, s in pairs) or "-"


# -- versions ------------------------------------------------------------------------

versions = group("versions", "Versions of a service.")


@command(versions, "list")
@click.argument("ref", metavar="APP/SERVICE")
@pass_ctx
def versions_list(ctx: Ctx, ref):
    """Versions of a service."""
    app_name, svc = split_ref(ref, 2, "APP/SERVICE")
    emit_list(ctx.client.list_all(f"/apps/{q(app_name)}/services/{q(svc)}/versions"),
              ("NAME", "IMAGE", "PORT", "REPLICAS", "CREATED"),
              lambda v: (v["name"], v.get("image", ""), str(v.get("port", "")), str(v.get("replicas", "")),
                         v.get("created_at") or ""))


@command(versions, "create")
@click.argument("ref", metavar="APP/SERVICE/VERSION")
@click.option("--image", required=True)
@click.option("--port", type=int, required=True)
@click.option("--replicas", type=int)
@click.option("--env", "env_vars", multiple=True, metavar="NAME=VALUE", help="Environment variable (repeat).")
@click.option("--health-path")
@click.option("--template")
@pass_ctx
def versions_create(ctx: Ctx, ref, image, port, replicas, env_vars, health_path, template):
    """Create a version of a service."""
    app_name, svc, name = split_ref(ref, 3, "APP/SERVICE/VERSION")
    body = {"name": name, "image": image, "port": port}
    if replicas is not None:
        body["replicas"] = replicas
    if env_vars:
        env = {}
        for pair in env_vars:
            if "=" not in pair:
                raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--env")
            k, v = pair.split("=", 1)
            env[k] = v
        body["env"] = env
    if health_path:
        body["health_path"] = health_path
    if template:
        body["template"] = template
    post_created(ctx, f"/apps/{q(app_name)}/services/{q(svc)}/versions", body, f"Version {app_name}/{svc}/{{name}}")


@command(versions, "show")
@click.argument("ref", metavar="APP/SERVICE/VERSION")
@pass_ctx
def versions_show(ctx: Ctx, ref):
    """A version's configuration."""
    app_name, svc, name = split_ref(ref, 3, "APP/SERVICE/VERSION")
    detail = ctx.client.get(f"/apps/{q(app_name)}/services/{q(svc)}/versions/{q(name)}")
    emit_fields(detail, [(key, value if isinstance(value, str) else json.dumps(value, default=str))
                         for key, value in detail.items()])


# -- deploys, records, logs, rollback --------------------------------------------------

@command(app, "deploy")
@click.argument("ref", metavar="APP/SERVICE/VERSION")
@shipping.where
@pass_ctx
def deploy(ctx: Ctx, ref, env, clusters, wait, timeout):
    """Deploy a version to --env test|prod or to --cluster NAME."""
    app_name, svc, ver = split_ref(ref, 3, "APP/SERVICE/VERSION")
    answer = ctx.client.create(f"/apps/{q(app_name)}/services/{q(svc)}/versions/{q(ver)}/deploy",
                               shipping.where_body(env, clusters))
    started(ctx, answer, f"Deploy of {ref}", wait, timeout)


@command(app, "rollback")
@click.argument("record_id", metavar="RECORD")
@shipping.waiting
@pass_ctx
def rollback(ctx: Ctx, record_id, wait, timeout):
    """Apply again what a succeeded record applied."""
    answer = ctx.client.create(f"/records/{q(record_id)}/rollback")
    started(ctx, answer, f"Rollback to record {record_id}", wait, timeout)


@command(app, "records")
@click.argument("app_name", metavar="APP")
@click.option("--service")
@click.option("--version")
@click.option("--limit", default=20, show_default=True)
@pass_ctx
def records(ctx: Ctx, app_name, service, version, limit):
    """Deploy history of an application, newest first."""
    page = ctx.client.get(f"/apps/{q(app_name)}/records", service=service, version=version, limit=limit)
    emit_list(page.get("items", []), ("ID", "ACTION", "SERVICE", "VERSION", "STATUS", "BY", "CREATED"),
              lambda r: (str(r.get("id")), r.get("action", ""), r.get("service") or "", r.get("version") or "",
                         styled(r.get("status")), r.get("created_by") or "", r.get("created_at") or ""),
              next_cursor=page.get("next_cursor"))


@command(app, "record")
@click.argument("record_id", metavar="RECORD")
@pass_ctx
def record(ctx: Ctx, record_id):
    """One record: its state on every cluster."""
    data = ctx.client.get(f"/records/{q(record_id)}")
    emit(data, record_table(data))


# -- servers (clusters, cloud accounts and admin channels: mae_cli/admin.py) -----------------

def _expiry_left(server: dict) -> str:
    """The server's own count (calendar days, UTC), the one the reminders use."""
    left = server.get("days_left")
    if not isinstance(left, int):
        return "-"
    if server.get("expired"):
        return "[red]expired today[/]" if left >= 0 else f"[red]expired {-left}d ago[/]"
    return f"[yellow]{left}d[/]" if left <= 30 else f"{left}d"


@command(app, "servers")
@click.option("--expiring", type=int, metavar="DAYS", help="Only those expiring within DAYS (or expired).")
@pass_ctx
def servers(ctx: Ctx, expiring):
    """The server inventory (admins), soonest expiry first."""
    items = ctx.client.list_all("/servers", expiring_within_days=expiring)
    items.sort(key=lambda s: (s.get("expires_at") is None, s.get("expires_at") or "", s.get("name", "")))
    emit_list(items, ("ID", "NAME", "IP", "PROVIDER", "EXPIRES", "LEFT", "OWNER"),
              lambda s: (str(s.get("id")), s.get("name", ""), s.get("ip", ""), s.get("provider") or "",
                         s.get("expires_at") or "-", _expiry_left(s), s.get("owner") or ""))


for extra in (*admin.GROUPS, cluster_init.cluster):
    app.add_command(extra)
account.register(app)
for extra in (*shipping.COMMANDS, *runtime.COMMANDS, resources.resources):  # runtime's `logs` reads records' logs too
    app.add_command(extra)


if __name__ == "__main__":
    app()
