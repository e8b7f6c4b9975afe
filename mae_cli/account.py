"""``mae tokens``, ``mae sessions``, ``mae audit``, ``mae blacklist`` and ``mae completion``:
your own credentials, what admins watch and block, and shell completion; plus the server
half of ``mae logout``. ``register(app)`` adds them (and mae_cli/app_config.py's) to ``mae``."""
from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from mae_cli import admin, app_config, config
from mae_cli.client import ApiError, Client, ConnectionFailed
from mae_cli.common import Ctx, command, delete_by_id, emit, emit_list, err, pass_ctx, q

SESSION_PREFIX, PERSONAL_PREFIX = "mae_s_", "mae_p_"

# -- tokens --------------------------------------------------------------------------------


@click.group("tokens")
def tokens():
    """Your personal access tokens."""


def token_row(t: dict) -> tuple:
    return (str(t["id"]), t["name"], t.get("scope") or "", t.get("prefix") or "", t.get("created_at") or "",
            t.get("expires_at") or "never", t.get("last_used_at") or "-")


@command(tokens, "list")
@pass_ctx
def tokens_list(ctx: Ctx):
    """Your personal access tokens (never the secret)."""
    emit_list(ctx.client.list_all("/tokens"), ("ID", "NAME", "SCOPE", "PREFIX", "CREATED", "EXPIRES", "LAST USED"),
              token_row)


@command(tokens, "create")
@click.option("--name", required=True)
@click.option("--scope", type=click.Choice(["read", "write"]), help="read may only GET (default write).")
@click.option("--expires-in-days", type=click.IntRange(0, 3650),
              help="Default 90; 0 never expires (administrators only).")
@pass_ctx
def tokens_create(ctx: Ctx, name, scope, expires_in_days):
    """Create a token; it is printed this once only."""
    body = {"name": name}
    if scope:
        body["scope"] = scope
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    created = ctx.client.post("/tokens", body)
    emit(created, text=created["token"])
    if not ctx.json:
        err.print(f"Token {created['id']} ({name}, {created.get('scope')}), expires "
                  f"{created.get('expires_at') or 'never'}. Keep it now: MAE shows it only once.")


tokens_revoke = delete_by_id(tokens, "revoke", "/tokens/{id}", "Token {id} revoked.", "revoked",
                             "Revoke a token: it stops working at once.")


# -- sessions ------------------------------------------------------------------------------

@click.group("sessions")
def sessions():
    """Your login sessions."""


@command(sessions, "list")
@pass_ctx
def sessions_list(ctx: Ctx):
    """Your login sessions, newest first (* the one in use)."""
    emit_list(ctx.client.list_all("/sessions"), ("ID", "DEVICE", "FROM", "CREATED", "LAST USED", "EXPIRES"),
              lambda s: (f"{s['id']}{' *' if s.get('current') else ''}", s.get("device") or "",
                         s.get("source_ip") or "", s.get("created_at") or "", s.get("last_used_at") or "-",
                         s.get("expires_at") or "-"))


sessions_end = delete_by_id(sessions, "end", "/sessions/{id}", "Session {id} ended.", "ended",
                            "End one of your sessions.")


@command(sessions, "end-others")
@pass_ctx
def sessions_end_others(ctx: Ctx):
    """End all your sessions but the one in use."""
    ctx.client.delete("/sessions")
    emit({"ended": "others"}, text="Every other session ended.")


# -- audit and blacklist (admins) ----------------------------------------------------------

@command(None, "audit")
@click.option("--actor", help="Who did it (a username).")
@click.option("--action", help="What was done, e.g. token.create.")
@click.option("--since", help="RFC 3339 time or YYYY-MM-DD.")
@click.option("--limit", default=100, show_default=True)
@pass_ctx
def audit(ctx: Ctx, actor, action, since, limit):
    """The audit log, newest first (admins)."""
    items = ctx.client.list_all("/admin/audit", limit=limit, actor=actor, action=action, since=since)[:limit]
    emit_list(items, ("TIME", "ACTOR", "ACTION", "TARGET", "FROM"),
              lambda a: (a.get("time") or "", a.get("actor") or "", a.get("action") or "", a.get("target") or "",
                         a.get("source_ip") or ""))


@click.group("blacklist")
def blacklist():
    """Blocked users (admins); the API has no list, `mae audit --action user_blocked` shows who was blocked."""


@command(blacklist, "add")
@click.argument("username", metavar="USER")
@click.option("--reason", help="Why (kept in the audit log).")
@pass_ctx
def blacklist_add(ctx: Ctx, username, reason):
    """Block USER: all their tokens and sessions stop working."""
    answer = ctx.client.put(f"/admin/blacklist/{q(username)}", {"reason": reason} if reason else {})
    emit(answer, text=f"{username} blocked.")


@command(blacklist, "remove")
@click.argument("username", metavar="USER")
@pass_ctx
def blacklist_remove(ctx: Ctx, username):
    """Unblock USER (their old tokens work again unless revoked)."""
    ctx.client.delete(f"/admin/blacklist/{q(username)}")
    emit({"username": username, "blocked": False}, text=f"{username} unblocked.")


# -- shell completion ------------------------------------------------------------------------

@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
@click.pass_context
def completion(click_ctx: click.Context, shell):
    """Print the completion script, e.g. `eval "$(mae completion bash)"` in ~/.bashrc."""
    root = click_ctx.find_root().command
    script = get_completion_class(shell)(root, {}, "mae", "_MAE_COMPLETE").source()
    click.echo(script)


# -- the server half of `mae logout` -------------------------------------------------------

def end_on_server(token: str | None) -> tuple[bool, str]:
    """End the kept ``token`` on the server: a session by POST /auth/logout, a personal token
    by DELETE /tokens/{id} (found by its prefix). ``(done, what happened)``; never raises."""
    if not token:
        return True, "no token was kept"
    settings = config.load()
    settings.token = token
    client = Client(settings, timeout=10)
    try:
        if token.startswith(PERSONAL_PREFIX):
            matches = [t for t in client.list_all("/tokens") if t.get("prefix") == token[:10]]
            if len(matches) != 1:
                return False, "the server was not told: the token in use is not uniquely in `mae tokens list`"
            client.delete(f"/tokens/{matches[0]['id']}")
            return True, f"personal token {matches[0]['id']} revoked on the server"
        client.post("/auth/logout")
        return True, "session ended on the server"
    except ApiError as exc:
        if exc.status == 401:
            return True, "the server no longer accepted the token"
        return False, f"the server was not told: {exc.message} (HTTP {exc.status})"
    except ConnectionFailed as exc:
        return False, f"the server was not told: {exc}"


def register(app: click.Group) -> None:
    for extra in (tokens, sessions, audit, blacklist, completion, *app_config.GROUPS):
        app.add_command(extra)
    app_config.extend_apps(app.commands["apps"])
    app.add_command(admin.servers_group(app.commands["servers"]))
