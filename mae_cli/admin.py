"""``mae clusters``, ``mae cloud-accounts``, ``mae admin channels`` and ``mae servers
add|update|delete``: what platform admins manage (anyone may list clusters)."""
from __future__ import annotations

from pathlib import Path

import click

from mae_cli.common import (OUTPUT, Ctx, command, delete_by_id, emit, emit_fields, emit_list, err, pass_ctx,
                            q)

# -- clusters ------------------------------------------------------------------------------


@click.group("clusters", invoke_without_command=True)
@OUTPUT
@click.pass_context
def clusters(click_ctx: click.Context):
    """Clusters and their health (without a subcommand: list them)."""
    if click_ctx.invoked_subcommand is None:
        click_ctx.invoke(clusters_list)


@command(clusters, "list")
@pass_ctx
def clusters_list(ctx: Ctx):
    """Clusters and their health."""
    emit_list(ctx.client.list_all("/clusters"), ("NAME", "ENV", "SERVER", "HEALTHY", "LAST REPORT"),
              lambda c: (c["name"], c.get("env", ""), c.get("server", ""),
                         "[green]yes[/]" if c.get("healthy") else "[red]no[/]", c.get("last_report_at") or "never"))


def read_text(path: str | None) -> str | None:
    return Path(path).read_text() if path else None


@command(clusters, "rotate-credentials")
@click.argument("name")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="A file holding the new ServiceAccount token (kept out of the shell's history).")
@click.option("--server", help="The API server's new https:// URL (default: unchanged).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="The cluster's new CA (PEM).")
@pass_ctx
def clusters_rotate_credentials(ctx: Ctx, name, token_file, server, ca_file):
    """Replace the credentials MAE deploys to NAME with (MAE checks them against the cluster first)."""
    body = {"token": read_text(token_file).strip()}
    if server:
        body["server"] = server
    if ca_file:
        body["ca_cert"] = read_text(ca_file)
    answer = ctx.client.post(f"/clusters/{q(name)}/credentials", body)
    emit(answer, text=f"Cluster {name}: new credentials in use (generation {answer.get('credentials_generation')}).")


@command(clusters, "report-token")
@click.argument("name")
@pass_ctx
def clusters_report_token(ctx: Ctx, name):
    """A new report token for NAME's operator; the old one works 10 more minutes."""
    answer = ctx.client.post(f"/clusters/{q(name)}/report-token")
    emit(answer, text=answer["report_token"])
    if not ctx.json:
        err.print(f"Give it to the operator of {name} (the old one stops at {answer.get('previous_valid_until')}).")


# -- cloud accounts ------------------------------------------------------------------------

@click.group("cloud-accounts")
def cloud_accounts():
    """Cloud accounts (admins)."""


def account_row(a: dict) -> tuple:
    every = a.get("sync_every_hours")
    return (str(a["id"]), a["name"], a.get("provider", ""), a.get("last_sync_status", ""),
            a.get("last_sync_at") or "-", f"{every}h" if every else "-", a.get("next_sync_at") or "-")


ACCOUNT_COLUMNS = ("ID", "NAME", "PROVIDER", "LAST SYNC", "AT", "EVERY", "NEXT")


@command(cloud_accounts, "list")
@pass_ctx
def cloud_accounts_list(ctx: Ctx):
    """Cloud accounts, their schedule and how their last import went."""
    emit_list(ctx.client.list_all("/cloud-accounts"), ACCOUNT_COLUMNS, account_row)


@command(cloud_accounts, "schedule")
@click.argument("account_id", type=int, metavar="ID")
@click.option("--every-hours", type=click.IntRange(0, 168), required=True,
              help="Hours between imports (1..168); 0 stops them.")
@pass_ctx
def cloud_accounts_schedule(ctx: Ctx, account_id, every_hours):
    """Import an account's servers every so many hours."""
    answer = ctx.client.patch(f"/cloud-accounts/{account_id}", {"sync_every_hours": every_hours})
    emit_fields(answer, zip(ACCOUNT_COLUMNS, account_row(answer)))


# -- the platform admins' channels ---------------------------------------------------------

@click.group("admin")
def admin():
    """What only platform admins manage."""


@admin.group("channels")
def channels():
    """The platform admins' notification channels (server.expiring, cluster.unreachable, ...)."""


@command(channels, "list")
@pass_ctx
def channels_list(ctx: Ctx):
    """The platform admins' channels (never a secret)."""
    emit_list(ctx.client.list_all("/admin/channels"), ("ID", "NAME", "TYPE", "URL", "EVENTS"),
              lambda c: (str(c["id"]), c["name"], c["type"], c.get("url", ""), ", ".join(c.get("events") or [])))


@command(channels, "create")
@click.argument("name")
@click.option("--type", "kind", type=click.Choice(["feishu", "dingtalk", "webhook"]), required=True)
@click.option("--url-file", type=click.Path(exists=True, dir_okay=False), required=True,
              help="A file holding the bot's webhook URL (it is the bot's credential).")
@click.option("--secret-file", type=click.Path(exists=True, dir_okay=False), help="The signing secret.")
@click.option("--event", "events", multiple=True, required=True,
              help="server.expiring, cluster.unreachable, build.failed, ... (repeat).")
@pass_ctx
def channels_create(ctx: Ctx, name, kind, url_file, secret_file, events):
    """Add a channel of the platform admins."""
    body = {"name": name, "type": kind, "url": read_text(url_file).strip(), "events": list(events)}
    if secret_file:
        body["secret"] = read_text(secret_file).strip()
    created = ctx.client.post("/admin/channels", body)
    emit(created, text=f"Channel {created['id']} ({name}) created.")


channels_delete = delete_by_id(channels, "delete", "/admin/channels/{id}", "Channel {id} removed.",
                               doc="Remove a channel of the platform admins.")


# -- servers: add / update / delete (the listing is mae_cli/main.py's ``servers``) ---------

SERVER_OPTIONS = (("--ip", str), ("--provider", str), ("--region", str), ("--instance-id", str), ("--cpu", int),
                  ("--memory-gb", float), ("--expires-at", str), ("--owner", str), ("--notes", str))


def server_fields(fn):
    """The server's optional fields as options (YYYY-MM-DD or RFC 3339 for --expires-at)."""
    for flag, kind in reversed(SERVER_OPTIONS):
        fn = click.option(flag, type=kind)(fn)
    return fn


def server_body(fields: dict) -> dict:
    return {key: value for key, value in fields.items() if value is not None}


def servers_group(listing: click.Command) -> click.Group:
    """``mae servers`` lists as before (``--expiring DAYS``); ``list``, ``add``, ``update`` and
    ``delete`` are its subcommands."""
    @click.group("servers", invoke_without_command=True, help=listing.help)
    @OUTPUT
    @click.option("--expiring", type=int, metavar="DAYS", help="Only those expiring within DAYS (or expired).")
    @click.pass_context
    def servers(click_ctx: click.Context, expiring):
        if click_ctx.invoked_subcommand is None:
            click_ctx.invoke(listing, expiring=expiring)

    servers.add_command(listing, "list")

    @command(servers, "add")
    @click.argument("name")
    @server_fields
    @pass_ctx
    def servers_add(ctx: Ctx, name, **fields):
        """Add a server to the inventory (--ip is required)."""
        if not fields.get("ip"):
            raise click.UsageError("Give --ip.")
        created = ctx.client.post("/servers", {"name": name, **server_body(fields)})
        emit(created, text=f"Server {created['id']} ({name}) added.")

    @command(servers, "update")
    @click.argument("server_id", type=int, metavar="ID")
    @click.option("--name")
    @server_fields
    @pass_ctx
    def servers_update(ctx: Ctx, server_id, **fields):
        """Change a server's fields."""
        body = server_body(fields)
        if not body:
            raise click.UsageError("Give at least one field to change.")
        emit(ctx.client.patch(f"/servers/{server_id}", body), text=f"Server {server_id} updated.")

    delete_by_id(servers, "delete", "/servers/{id}", "Server {id} removed.",
                 doc="Remove a server from the inventory.")

    return servers


GROUPS = (clusters, cloud_accounts, admin)
