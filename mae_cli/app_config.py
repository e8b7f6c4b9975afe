"""``mae channels``, ``mae templates`` (mae_cli/templates.py) and ``mae apps update|delete``: what an
application's maintainers set up besides its services (added to ``mae`` by mae_cli/account.py)."""
from __future__ import annotations

import json

import click

from mae_cli.common import Ctx, command, emit, emit_list, pass_ctx, q
from mae_cli.templates import templates

# -- an application's notification channels -----------------------------------------------


@click.group("channels")
def channels():
    """An application's Feishu, DingTalk and webhook channels."""


@command(channels, "list")
@click.argument("app_name", metavar="APP")
@pass_ctx
def channels_list(ctx: Ctx, app_name):
    """APP's channels (never a secret; URLs masked)."""
    emit_list(ctx.client.list_all(f"/apps/{q(app_name)}/channels"), ("ID", "NAME", "TYPE", "URL", "EVENTS"),
              lambda c: (str(c["id"]), c["name"], c["type"], c.get("url", ""), ", ".join(c.get("events") or [])))


@command(channels, "create")
@click.argument("app_name", metavar="APP")
@click.option("--name", required=True)
@click.option("--type", "kind", type=click.Choice(["feishu", "dingtalk", "webhook"]), required=True)
@click.option("--url", required=True, help="The bot's webhook URL.")
@click.option("--secret", help="The signing secret (never shown again).")
@click.option("--event", "events", multiple=True, required=True,
              help="deploy.succeeded, deploy.failed, build.succeeded, build.failed (repeat).")
@pass_ctx
def channels_create(ctx: Ctx, app_name, name, kind, url, secret, events):
    """Add a channel to APP."""
    body = {"name": name, "type": kind, "url": url, "events": list(events)}
    if secret:
        body["secret"] = secret
    created = ctx.client.post(f"/apps/{q(app_name)}/channels", body)
    emit(created, text=f"Channel {created['id']} ({name}) added to {app_name}.")


@command(channels, "delete")
@click.argument("app_name", metavar="APP")
@click.argument("channel_id", type=int, metavar="ID")
@pass_ctx
def channels_delete(ctx: Ctx, app_name, channel_id):
    """Remove a channel of APP."""
    ctx.client.delete(f"/apps/{q(app_name)}/channels/{channel_id}")
    emit({"deleted": channel_id}, text=f"Channel {channel_id} removed from {app_name}.")


@command(channels, "test")
@click.argument("app_name", metavar="APP")
@click.argument("channel_id", type=int, metavar="ID")
@pass_ctx
def channels_test(ctx: Ctx, app_name, channel_id):
    """Send a test message through a channel of APP."""
    answer = ctx.client.post(f"/apps/{q(app_name)}/channels/{channel_id}/test")
    emit(answer, text=f"Channel {channel_id} accepted the test message"
                      f" ({answer.get('attempts', 1)} attempt(s)).")


# -- apps update / delete ------------------------------------------------------------------

@command(None, "update")
@click.argument("name")
@click.option("--display-name")
@click.option("--description")
@pass_ctx
def apps_update(ctx: Ctx, name, display_name, description):
    """Change an application's display name or description."""
    body = {k: v for k, v in (("display_name", display_name), ("description", description)) if v is not None}
    if not body:
        raise click.UsageError("Give --display-name and/or --description.")
    changed = ctx.client.patch(f"/apps/{q(name)}", body)
    emit(changed, text=f"Application {name} updated: {json.dumps(body, ensure_ascii=False)}")


@command(None, "delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask.")
@pass_ctx
def apps_delete(ctx: Ctx, name, yes):
    """Delete an application (owners)."""
    if not yes:
        click.confirm(f"Delete application {name}?", abort=True, err=True)
    ctx.client.delete(f"/apps/{q(name)}")
    emit({"deleted": name}, text=f"Application {name} deleted.")


def extend_apps(apps: click.Group) -> None:
    for extra in (apps_update, apps_delete):
        if extra.name not in apps.commands:
            apps.add_command(extra)


GROUPS = (channels, templates)
