"""``mae resources``: a version's objects on each cluster as a tree — its Deployment, the
Deployment's ReplicaSets (newest revision first, the current one marked) and each one's
pods, with their states; ``-w`` keeps it on screen as it changes until Ctrl-C (exit 0)."""
from __future__ import annotations

import time

import click
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from mae_cli.client import ApiError, ConnectionFailed
from mae_cli.common import REASONS, Ctx, command, emit, err, out, pass_ctx
from mae_cli.runtime import streamed
from mae_cli.shipping import version_path

INTERVAL = 2.0  # seconds between two reads of a watched tree
STEP = "  "     # one level of the tree


def _ready(ready, desired) -> str:
    counts = f"{ready or 0}/{desired or 0} ready"
    return f"[green]{counts}[/]" if (ready or 0) == (desired or 0) else f"[yellow]{counts}[/]"


def _conditions(conditions: list) -> str:
    words = []
    for c in conditions or []:
        status = c.get("status")
        color = "green" if status == "True" else "red" if status == "False" else "yellow"
        text = f"[{color}]{escape(str(c.get('type')))}={escape(str(status))}[/]"
        if status != "True" and (c.get("reason") or c.get("message")):
            text += escape(f" ({': '.join(x for x in (c.get('reason'), c.get('message')) if x)})")
        words.append(text)
    return "  ".join(words)


def _pod(p: dict) -> str:
    phase = p.get("phase") or "Unknown"
    color = {"Running": "green", "Succeeded": "dim", "Pending": "yellow", "Failed": "red"}.get(phase, "yellow")
    parts = [f"Pod {escape(p.get('name', ''))}", f"[{color}]{escape(phase)}[/]",
             "[green]ready[/]" if p.get("ready") else "[red]not ready[/]", f"restarts {p.get('restarts', 0)}"]
    reason = p.get("reason")
    if reason:
        words = REASONS.get(reason)
        parts.append(f"[yellow]{escape(reason)}[/]" + (escape(f": {words}") if words else ""))
    if p.get("node"):
        parts.append(f"on {escape(p['node'])}")
    return "  ".join(parts)


def tree_lines(items: list) -> list[str]:
    """The tree of each cluster's item, one object a line, indented by level (rich markup)."""
    lines = []
    for item in items:
        head = f"[bold]{escape(item.get('cluster', ''))}[/] ({escape(item.get('env') or '-')})"
        if not item.get("reachable", True):
            lines.append(f"{head}  [red]unreachable[/]: {escape(item.get('error') or '')}")
            continue
        lines.append(head)
        d = item.get("deployment")
        if d is None:
            lines.append(f"{STEP}[yellow]no Deployment[/]")
        else:
            r = d.get("replicas") or {}
            lines.append(f"{STEP}Deployment {escape(d.get('name', ''))}  {_ready(r.get('ready'), r.get('desired'))}"
                         f"  updated {r.get('updated', 0)}  available {r.get('available', 0)}"
                         f"  generation {d.get('observed_generation')}/{d.get('generation')}"
                         f"  {_conditions(d.get('conditions'))}".rstrip())
        for rs in item.get("replicasets") or []:
            r = rs.get("replicas") or {}
            lines.append(f"{STEP * 2}ReplicaSet {escape(rs.get('name', ''))}  revision {rs.get('revision')}  "
                         + ("[cyan]current[/]" if rs.get("current") else "[dim]old[/]")
                         + f"  {_ready(r.get('ready'), r.get('desired'))}")
            lines += [f"{STEP * 3}{_pod(p)}" for p in rs.get("pods") or []]
    return lines


def rendered(answer: dict, what: str) -> Text:
    lines = tree_lines(answer.get("items") or [])
    if not lines:
        return Text(f"{what} is on no cluster (not deployed, or retired).")
    return Text.from_markup("\n".join(lines))


@command(None, "resources")
@click.argument("parts", nargs=-1, required=True, metavar="APP/SERVICE/VERSION | APP SERVICE VERSION")
@click.option("--cluster", help="Only this cluster.")
@click.option("-w", "--watch", is_flag=True, help="Keep showing the tree as it changes, until Ctrl-C.")
@pass_ctx
def resources(ctx: Ctx, parts, cluster, watch):
    """A version's Deployment, ReplicaSets and pods on each cluster, as a tree."""
    if len(parts) not in (1, 3):
        raise click.UsageError("Give APP/SERVICE/VERSION, or APP SERVICE VERSION.")
    ref = "/".join(parts)
    path = version_path(ref)[1] + "/resources"
    answer = ctx.client.get(path, cluster=cluster)
    if not watch:
        emit(answer, rendered(answer, ref))
        return
    try:
        watched(ctx, path, cluster, answer, ref)
    except KeyboardInterrupt:  # Ctrl-C ends a watch: what the person asked for, not an error
        pass


def watched(ctx: Ctx, path: str, cluster, answer: dict, ref: str) -> None:
    """Show ``answer``, then each new tree that differs from the last: a JSON line or YAML
    document each with -o, redrawn in place on a terminal, printed again otherwise. A read
    that fails on the way (MAE restarting, 5xx) is said on stderr and tried again."""
    def reads():
        last = answer
        while True:
            time.sleep(INTERVAL)
            try:
                fresh = ctx.client.get(path, cluster=cluster)
            except (ConnectionFailed, ApiError) as exc:
                if isinstance(exc, ApiError) and exc.status < 500:
                    raise
                err.print(f"[yellow]Could not read the tree now ({escape(str(exc))}); trying again.[/]", markup=True)
                continue
            if fresh != last:
                last = fresh
                yield fresh

    if ctx.json:
        streamed(ctx, answer)
        for fresh in reads():
            streamed(ctx, fresh)
    elif out.is_terminal:
        with Live(rendered(answer, ref), console=out, auto_refresh=False) as live:
            for fresh in reads():
                live.update(rendered(fresh, ref), refresh=True)
    else:
        out.print(rendered(answer, ref))
        for fresh in reads():
            out.print()
            out.print(rendered(fresh, ref))
