"""What every `mae` command shares: the context (output mode, API client), the ``command``
decorator (``-o/--output`` and the API's errors as clear messages), and printing.

``-o json`` and ``-o yaml`` print one document on stdout and nothing else (the same data
in either); anything meant for a person goes to stderr."""
from __future__ import annotations

import functools
import json
import sys
import time
from urllib.parse import quote

import click
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from mae_cli import config
from mae_cli.client import ApiError, Client, ConnectionFailed

EXIT_ERROR, EXIT_FAILED, EXIT_TIMEOUT = 1, 3, 4
POLICY_DETAILS = ("rule", "object", "path")  # of a 422 policy_violation, printed under its message
FINISHED = {"succeeded", "failed", "superseded"}
STATUS_STYLE = {"succeeded": "green", "failed": "red", "superseded": "yellow", "pending": "yellow",
                "applying": "cyan", "applied": "cyan", "progressing": "cyan"}
# Kubernetes' waiting reasons, in plain words.
REASONS = {
    "ErrImagePull": "the image could not be pulled (does the image and tag exist?)",
    "ImagePullBackOff": "the image could not be pulled (does the image and tag exist?)",
    "InvalidImageName": "the image name is not valid",
    "CrashLoopBackOff": "the container keeps crashing (see `mae logs`)",
    "ProgressDeadlineExceeded": "the rollout took too long: the new pods never became ready",
    "CreateContainerConfigError": "the container could not be created from its configuration",
    "OOMKilled": "the container ran out of memory",
}

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def q(part) -> str:
    return quote(str(part), safe="")


class Ctx:
    def __init__(self):
        self.output = "table"
        self._client = None

    @property
    def json(self) -> bool:
        """A document for scripts (json or yaml), not text for a person."""
        return self.output in DOCUMENT_FORMATS

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(config.load())
        return self._client


pass_ctx = click.make_pass_decorator(Ctx, ensure=True)


def _set_output(ctx: click.Context, _param, value):
    if value:
        ctx.ensure_object(Ctx).output = value
    return value


DOCUMENT_FORMATS = ("json", "yaml")
OUTPUT = click.option("-o", "--output", type=click.Choice(["table", *DOCUMENT_FORMATS]), expose_value=False,
                      callback=_set_output, is_eager=True, help="table (default), or json or yaml for scripts.")


def command(group, *args, **kwargs):
    """A subcommand of ``group`` (None: a standalone command for ``add_command``) with
    -o/--output and the API's errors turned into clear messages."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*a, **kw):
            try:
                return fn(*a, **kw)
            except ApiError as exc:
                hint = ""
                if exc.status == 401:
                    hint = " Run `mae login` (or set MAE_TOKEN)."
                err.print(f"[red]Error:[/red] {exc.message}{hint} [dim](HTTP {exc.status}, {exc.code})[/dim]",
                          markup=True, highlight=False)
                if exc.code == "policy_violation":  # what the workload policy refused, and where
                    for key in POLICY_DETAILS:
                        err.print(f"  {key}: {exc.details.get(key, '-')}", markup=False, highlight=False)
                sys.exit(EXIT_ERROR)
            except ConnectionFailed as exc:
                err.print(f"[red]Error:[/red] {exc}", markup=True)
                sys.exit(EXIT_ERROR)
        return (group.command if group is not None else click.command)(*args, **kwargs)(OUTPUT(run))
    return wrap


def emit(data, table: Table | None = None, text: str | None = None):
    """Only the document on stdout with -o json / -o yaml, else a table or a line for a person."""
    ctx = click.get_current_context().find_object(Ctx)
    if ctx and ctx.json:
        click.echo(document(data, ctx.output))
    elif table is not None:
        out.print(table)
    elif text is not None:
        out.print(text, markup=False)


def document(data, output: str) -> str:
    """``data`` as JSON or YAML; YAML is made from the JSON, so both carry the same values."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    if output != "yaml":
        return text
    return yaml.safe_dump(json.loads(text), sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")


def table(*columns: str) -> Table:
    t = Table(box=None, header_style="bold", pad_edge=False)
    for c in columns:
        t.add_column(c)
    return t


def styled(status: str | None) -> str:
    s = status or "-"
    return f"[{STATUS_STYLE.get(s, 'white')}]{s}[/]"


def split_ref(ref: str, parts: int, what: str) -> list[str]:
    pieces = ref.split("/")
    if len(pieces) != parts or not all(pieces):
        raise click.BadParameter(f"expected {what}, got {ref!r}")
    return pieces


def emit_list(items: list, columns: tuple[str, ...], row, **extra) -> None:
    """A list: ``{"items": [...], **extra}`` as JSON, else a table of ``columns`` with the
    cells ``row(item)`` gives for each item."""
    t = table(*columns)
    for item in items:
        t.add_row(*row(item))
    emit({"items": items, **extra}, t)


def emit_fields(data: dict, pairs) -> None:
    """One object: itself as JSON, else a FIELD/VALUE table of ``pairs``."""
    t = table("FIELD", "VALUE")
    for key, value in pairs:
        t.add_row(key, value)
    emit(data, t)


def delete_by_id(group, name: str, path: str, done: str, key: str = "deleted", doc: str = "") -> click.Command:
    """``mae GROUP NAME ID``: DELETE ``path.format(id=ID)``, then ``{key: ID}`` as the document,
    or ``done.format(id=ID)`` for a person."""
    @command(group, name, help=doc)
    @click.argument("item_id", type=int, metavar="ID")
    @pass_ctx
    def delete(ctx: Ctx, item_id):
        ctx.client.delete(path.format(id=item_id))
        emit({key: item_id}, text=done.format(id=item_id))
    return delete


# -- records: the per-cluster progress of a deploy, route, restart, scale, retire ------------

def record_table(record: dict) -> Table:
    t = Table(title=f"record {record.get('id')} · {record.get('action')} "
                    f"{record.get('app')}/{record.get('service')}/{record.get('version')} · "
                    f"{styled(record.get('status'))}", title_justify="left", box=None,
              header_style="bold", pad_edge=False)
    for c in ("CLUSTER", "ENV", "STATUS", "READY", "REASON"):
        t.add_column(c)
    for target in record.get("targets") or []:
        r = target.get("replicas") or {}
        ready = f"{r.get('ready', '-')}/{r.get('desired', '-')}" if r else "-"
        reason = target.get("reason") or ""
        words = REASONS.get(reason)
        reason_text = f"{words} ({reason})" if words else reason
        if target.get("message"):
            reason_text = f"{reason_text}: {target['message']}" if reason_text else target["message"]
        t.add_row(target.get("cluster", ""), target.get("env", ""), styled(target.get("status")), ready,
                  reason_text)
    return t


def wait_for(ctx: Ctx, record_id, timeout: float, interval: float = 1.0) -> dict:
    """Poll the record until it finishes (live table on a terminal); exit 3/4 on failure/timeout."""
    client = ctx.client
    deadline = time.monotonic() + timeout
    record = client.get(f"/records/{q(record_id)}")
    if ctx.json:
        while record.get("status") not in FINISHED and time.monotonic() < deadline:
            time.sleep(interval)
            record = client.get(f"/records/{q(record_id)}")
    else:
        # transient=False keeps the final table on screen; off a terminal only that is printed.
        with Live(record_table(record), console=err, refresh_per_second=4, transient=False) as live:
            while record.get("status") not in FINISHED and time.monotonic() < deadline:
                time.sleep(interval)
                record = client.get(f"/records/{q(record_id)}")
                live.update(record_table(record))
    return record


def finish(ctx: Ctx, record: dict):
    status = record.get("status")
    emit(record, text=f"record {record.get('id')}: {status}")
    if status not in FINISHED:
        err.print(f"Gave up waiting: record {record.get('id')} is still {status}. "
                  f"Follow it with `mae logs {record.get('id')} -f`.")
        sys.exit(EXIT_TIMEOUT)
    if status != "succeeded":
        reasons = [t.get("reason") or t.get("message") for t in record.get("targets") or []
                   if t.get("status") != "succeeded" and (t.get("reason") or t.get("message"))]
        err.print(f"[red]{record.get('action', 'deploy').capitalize()} {status}[/red]"
                  + (": " + "; ".join(REASONS.get(r, r) for r in reasons) if reasons else "."), markup=True)
        sys.exit(EXIT_FAILED)


def started(ctx: Ctx, answer: dict, what: str, wait: bool, timeout: float) -> None:
    """After a POST that made a record (``answer`` is ``{"record_id"}``): say so, or with
    ``wait`` follow it to the end (exit 3 when it failed, 4 when ``timeout`` ran out)."""
    record_id = answer["record_id"]
    if not wait:
        emit(answer, text=f"{what} started: record {record_id}. Follow it with `mae logs {record_id} -f`.")
        return
    if not ctx.json:
        err.print(f"{what}: record {record_id}")
    finish(ctx, wait_for(ctx, record_id, timeout))
