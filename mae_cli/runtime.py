"""What runs: ``mae pods``, ``mae events`` and ``mae logs`` — a record's log (``mae logs 42``)
or a version's pods' logs (``mae logs APP/SVC/VER``), the argument's shape decides."""
from __future__ import annotations

import json
import sys
import time

import click
import requests

from mae_cli.client import ApiError, ConnectionFailed
from mae_cli.common import FINISHED, Ctx, command, document, emit_list, err, out, pass_ctx, q
from mae_cli.shipping import version_path

@command(None, "pods")
@click.argument("ref", metavar="APP/SERVICE/VERSION")
@click.option("--cluster", help="Only the pods on this cluster.")
@pass_ctx
def pods(ctx: Ctx, ref, cluster):
    """A version's pods on every cluster it runs on."""
    answer = ctx.client.get(f"{version_path(ref)[1]}/pods", cluster=cluster)
    emit_list(answer.get("items", []), ("CLUSTER", "POD", "PHASE", "READY", "RESTARTS", "REASON", "STARTED"),
              lambda p: (p.get("cluster", ""), p.get("name", ""), p.get("phase") or "",
                         "[green]yes[/]" if p.get("ready") else "[red]no[/]", str(p.get("restarts", 0)),
                         p.get("reason") or "", p.get("started_at") or ""),
              **({"unreachable": answer["unreachable"]} if answer.get("unreachable") else {}))
    unreached(ctx, answer)


@command(None, "events")
@click.argument("app_name", metavar="APP")
@click.option("--cluster")
@click.option("--service")
@click.option("--version")
@pass_ctx
def events(ctx: Ctx, app_name, cluster, service, version):
    """Kubernetes events of an application's objects, newest first."""
    answer = ctx.client.get(f"/apps/{q(app_name)}/events", cluster=cluster, service=service, version=version)
    emit_list(answer.get("items", []), ("LAST SEEN", "CLUSTER", "TYPE", "OBJECT", "REASON", "COUNT", "MESSAGE"),
              lambda e: (e.get("last_seen") or "", e.get("cluster", ""),
                         "[yellow]Warning[/]" if e.get("type") == "Warning" else e.get("type", ""),
                         e.get("object", ""), e.get("reason") or "", str(e.get("count", "")), e.get("message") or ""),
              **({"unreachable": answer["unreachable"]} if answer.get("unreachable") else {}))
    unreached(ctx, answer)


def unreached(ctx: Ctx, answer: dict) -> None:
    if answer.get("unreachable") and not ctx.json:
        err.print(f"[yellow]Not reachable now:[/] {', '.join(answer['unreachable'])}", markup=True)


@command(None, "logs")
@click.argument("ref", metavar="RECORD|APP/SERVICE/VERSION")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (a record: until it finishes; "
                                                   "a version: until Ctrl-C).")
@click.option("--cluster", help="A version's logs: the cluster (needed when it runs on several).")
@click.option("--pod", help="A version's logs: only this pod.")
@click.option("--tail", type=click.IntRange(1, 10000), help="A version's logs: the last N lines of each pod.")
@click.option("--since", "since", type=click.IntRange(1), metavar="SECONDS",
              help="A version's logs: only lines of the last SECONDS.")
@pass_ctx
def logs(ctx: Ctx, ref, follow, cluster, pod, tail, since):
    """A record's log (RECORD is its id), or a version's pods' logs (APP/SERVICE/VERSION)."""
    if ref.isdigit():
        if cluster or pod or tail or since:
            raise click.UsageError("--cluster, --pod, --tail and --since are for a version's logs "
                                   "(APP/SERVICE/VERSION), not a record's.")
        record_logs(ctx, ref, follow)
        return
    try:
        version_logs(ctx, version_path(ref)[1] + "/logs", follow,
                     {"cluster": cluster, "pod": pod, "tail": tail, "since_seconds": since})
    except KeyboardInterrupt:  # Ctrl-C before the first line: the person stopped it, not an error
        pass


def version_logs(ctx: Ctx, path: str, follow: bool, params: dict) -> None:
    """Stream the version's log lines (``<pod> <line>``) as they arrive; Ctrl-C ends it (exit 0)."""
    client = ctx.client
    params = {k: v for k, v in params.items() if v is not None}
    if follow:
        params["follow"] = "1"
    try:
        response = client.session.get(client.base + path, params=params, stream=True,
                                      timeout=(client.timeout, None if follow else client.timeout))
    except requests.RequestException as exc:
        raise ConnectionFailed(f"Cannot read the logs from MAE at {client.settings.url} ({exc.__class__.__name__}).")
    collected = []
    try:
        if not response.ok:
            error = _error_of(response)
            raise ApiError(response.status_code, error.get("code", f"http_{response.status_code}"),
                           error.get("message") or f"MAE answered HTTP {response.status_code} {response.reason}.")
        for raw in response.iter_lines(decode_unicode=False):
            text = raw.decode("utf-8", errors="replace")
            pod_name, _, line = text.partition(" ")
            if ctx.json and follow:
                streamed(ctx, {"pod": pod_name, "line": line})
            elif ctx.json:
                collected.append({"pod": pod_name, "line": line})
            else:
                click.echo(text)
                sys.stdout.flush()
    except KeyboardInterrupt:
        return
    except requests.RequestException:
        if not follow:
            raise ConnectionFailed("The log stream from MAE ended early.")
    finally:
        response.close()
    if ctx.json and not follow:
        click.echo(document({"items": collected}, ctx.output))


def streamed(ctx: Ctx, item: dict) -> None:
    """One item of a followed stream: a JSON line, or a YAML document of its own."""
    text = json.dumps(item, default=str, ensure_ascii=False) if ctx.output == "json" else \
        "---\n" + document(item, ctx.output)
    click.echo(text)
    sys.stdout.flush()


def _error_of(response) -> dict:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, dict) else {}


def record_logs(ctx: Ctx, record_id: str, follow: bool) -> None:
    """A record's log; with ``follow`` new lines until the record finishes."""
    client = ctx.client
    after = None
    collected = []

    def drain():
        nonlocal after
        while True:
            page = client.get(f"/records/{q(record_id)}/logs", after=after)
            items = page.get("items", [])
            for line in items:
                if ctx.json and follow:
                    streamed(ctx, line)  # one JSON object per line
                elif ctx.json:
                    collected.append(line)
                else:
                    out.print(f"[dim]{line.get('time', '')}[/dim] [blue]{line.get('cluster') or ''}[/blue] "
                              f"{_level(line.get('level'))}", end=" ", markup=True)
                    out.print(line.get("line", ""), markup=False, highlight=False)
            if page.get("next_after") is not None:
                after = page["next_after"]
            if not items:
                return

    drain()
    if follow:
        while client.get(f"/records/{q(record_id)}").get("status") not in FINISHED:
            time.sleep(1)
            drain()
        drain()
    elif ctx.json:
        click.echo(document({"items": collected, "next_after": after}, ctx.output))


def _level(level) -> str:
    level = (level or "info").lower()
    color = {"error": "red", "warning": "yellow", "warn": "yellow"}.get(level, "dim")
    return f"[{color}]{level.upper():5}[/]"


COMMANDS = (pods, events, logs)
