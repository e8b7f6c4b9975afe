"""What every `mae` command shares: the context (output mode, API client), the ``command``
decorator (``-o/--output`` and the API's errors as clear messages), and printing."""
from __future__ import annotations

import functools
import json
import sys
from urllib.parse import quote

import click
from rich.console import Console
from rich.table import Table

from mae_cli import config
from mae_cli.client import ApiError, Client, ConnectionFailed

EXIT_ERROR, EXIT_FAILED, EXIT_TIMEOUT = 1, 3, 4
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
        return self.output == "json"

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


OUTPUT = click.option("-o", "--output", type=click.Choice(["table", "json"]), expose_value=False,
                      callback=_set_output, is_eager=True, help="table (default) or json for scripts.")


def command(group, *args, **kwargs):
    """A subcommand with -o/--output and the API's errors turned into clear messages."""
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
                sys.exit(EXIT_ERROR)
            except ConnectionFailed as exc:
                err.print(f"[red]Error:[/red] {exc}", markup=True)
                sys.exit(EXIT_ERROR)
        return group.command(*args, **kwargs)(OUTPUT(run))
    return wrap


def emit(data, table: Table | None = None, text: str | None = None):
    """Pure JSON on stdout with -o json, else a table or a line for a person."""
    ctx = click.get_current_context().find_object(Ctx)
    if ctx and ctx.json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    elif table is not None:
        out.print(table)
    elif text is not None:
        out.print(text, markup=False)


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
