"""``mae templates``: deploy templates — the built-in ones and an application's own, listed,
added, previewed (what they render, checked as a save checks it), changed and deleted.

A template comes from a file (``-f FILE``, ``-`` for stdin) in one of two shapes: with
``--kind`` the file is the template's body itself (Jinja2 text); without it, a YAML or JSON
mapping with ``kind``, ``body`` and optionally ``fields`` (the shape ``templates create``
reads). ``--fields FILE`` (a JSON or YAML list) gives or replaces the fields. A refused
template is exit 1 (mae_cli/common.py); a policy's refusal names its rule, object and path.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from mae_cli.common import EXIT_ERROR, Ctx, command, document, emit, emit_list, err, pass_ctx, q

KINDS = ("version", "ingress")


@click.group("templates")
def templates():
    """Deploy templates: built-in ones and your applications'."""


@command(templates, "list")
@click.option("--app", "app_name", help="Only APP's own templates.")
@pass_ctx
def templates_list(ctx: Ctx, app_name):
    """Templates you can use (built-in ones have no APP)."""
    items = ctx.client.list_all("/templates")
    if app_name:
        items = [t for t in items if t.get("app") == app_name]
    emit_list(items, ("NAME", "KIND", "APP", "FIELDS", "CREATED BY"),
              lambda t: (t["name"], t.get("kind", ""), t.get("app") or "(built-in)",
                         ", ".join(f.get("name", "") for f in t.get("fields") or []), t.get("created_by") or ""))


# -- reading a template from files ---------------------------------------------------------

def read_text(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text()


def parsed(text: str, path: str, hint: str):
    """``text`` (of ``path``) as YAML or JSON (JSON is YAML), or a usage error naming it."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"{path} is not YAML or JSON: {exc}", param_hint=hint)


def definition(path: str, kind: str | None, fields_path: str | None) -> dict:
    """The request body (``kind``, ``body``, ``fields``...) from ``-f``, ``--kind`` and ``--fields``."""
    text = read_text(path)
    if kind:
        body = {"kind": kind, "body": text}
    else:
        body = parsed(text, path, "-f")
        if not isinstance(body, dict) or not isinstance(body.get("body"), str):
            raise click.BadParameter(f"{path} must hold a mapping with kind and body, or give --kind and "
                                     f"{path} is the template's body itself", param_hint="-f")
    if fields_path:
        fields = parsed(read_text(fields_path), fields_path, "--fields")
        if not isinstance(fields, list):
            raise click.BadParameter(f"{fields_path} must hold a list of {{name, type, default?, description?}}",
                                     param_hint="--fields")
        body["fields"] = fields
    return body


def source(fn):
    """``-f/--file``, ``--kind`` and ``--fields``."""
    fn = click.option("--fields", "fields_path", type=click.Path(exists=True, dir_okay=False, allow_dash=True),
                      help="A JSON or YAML list of the template's fields (name, type, default, description).")(fn)
    fn = click.option("--kind", type=click.Choice(KINDS),
                      help="The file is the template's body itself, a template for this kind of object.")(fn)
    return click.option("-f", "--file", "path", required=True,
                        type=click.Path(exists=True, dir_okay=False, allow_dash=True),
                        help="The template's body (with --kind), or YAML/JSON with kind, body and fields "
                             "('-': stdin).")(fn)


def values_of(pairs, fields) -> dict:
    """``--set NAME=VALUE``s: a field of type string takes VALUE as text; otherwise VALUE is
    read as JSON when it is JSON (8081, true, ["a"], {"k": 1}), else taken as text."""
    types = {f.get("name"): f.get("type", "string") for f in fields or [] if isinstance(f, dict)}
    values = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--set")
        values[name] = text
        if types.get(name) != "string":
            try:
                values[name] = json.loads(text)
            except ValueError:
                pass
    return values


# -- the commands --------------------------------------------------------------------------

@command(templates, "create")
@click.argument("app_name", metavar="APP")
@click.option("-f", "--file", "path", type=click.Path(exists=True, dir_okay=False, allow_dash=True), required=True,
              help="YAML or JSON with name, kind (version|ingress), body and optionally fields.")
@pass_ctx
def templates_create(ctx: Ctx, app_name, path):
    """Add a template to APP (MAE refuses it unless it renders allowed objects)."""
    body = parsed(read_text(path), path, "--file")
    if not isinstance(body, dict):
        raise click.BadParameter(f"{path} must hold a mapping with name, kind and body", param_hint="--file")
    created = ctx.client.post(f"/apps/{q(app_name)}/templates", body)
    emit(created, text=f"Template {created['name']} added to {app_name}.")


@command(templates, "preview")
@click.argument("app_name", metavar="APP")
@source
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE",
              help="A field's value to render with (repeat); the fields' defaults otherwise.")
@pass_ctx
def templates_preview(ctx: Ctx, app_name, path, kind, fields_path, pairs):
    """What a template renders in APP from sample values, checked as a save would check it
    (nothing is stored). Prints the manifests as YAML (every Secret value redacted)."""
    body = definition(path, kind, fields_path)
    body.pop("name", None)
    if pairs:
        body["values"] = values_of(pairs, body.get("fields"))
    answer = ctx.client.post(f"/apps/{q(app_name)}/templates/preview", body)
    if ctx.json:
        emit(answer)
        return
    click.echo("\n---\n".join(document(m, "yaml") for m in answer.get("manifests") or []))
    err.print(f"# rendered with values {json.dumps(answer.get('values') or {}, ensure_ascii=False)}",
              markup=False, highlight=False)


@command(templates, "update")
@click.argument("app_name", metavar="APP")
@click.argument("name")
@source
@pass_ctx
def templates_update(ctx: Ctx, app_name, name, path, kind, fields_path):
    """Change a template of APP (checked as when it was added; refused while a version or
    ingress using it would not fit). Without fields (in the file or --fields) it keeps its own."""
    body = definition(path, kind, fields_path)
    if "fields" not in body:
        kept = [t.get("fields") for t in ctx.client.list_all("/templates") if t.get("app") == app_name
                and t.get("name") == name]
        if kept:
            body["fields"] = kept[0]
    changed = ctx.client.put(f"/apps/{q(app_name)}/templates/{q(name)}", body)
    emit(changed, text=f"Template {name} of {app_name} changed.")


@command(templates, "delete")
@click.argument("app_name", metavar="APP")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for the template's name.")
@pass_ctx
def templates_delete(ctx: Ctx, app_name, name, yes):
    """Delete a template of APP (refused while a version or ingress uses it). Asks for its
    name to be typed unless --yes."""
    if not yes:
        typed = click.prompt(f"Delete template {name} of {app_name}? Type its name to confirm", err=True,
                             default="", show_default=False)
        if typed.strip() != name:
            err.print(f"Not deleted: {typed.strip()!r} is not {name!r}.", markup=False, highlight=False)
            sys.exit(EXIT_ERROR)
    ctx.client.delete(f"/apps/{q(app_name)}/templates/{q(name)}")
    emit({"app": app_name, "deleted": name}, text=f"Template {name} deleted from {app_name}.")

