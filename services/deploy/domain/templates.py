"""Templates: jinja2 text that renders a version or an ingress into Kubernetes objects.

Templates are written by people (maintainers of an application), so they run
in jinja2's immutable sandbox with nothing in reach but plain data (dicts,
lists, strings, numbers): no globals, no loader (so no include/import/extends),
undefined names are errors (StrictUndefined), and attribute access to anything
starting with ``_`` is refused twice — statically when the template is saved
(the reason is shown to the person) and by the sandbox when it renders.
Rendering stops when the output grows past ``MAX_OUTPUT`` or takes longer
than ``MAX_SECONDS``; ``*`` and ``**`` are checked so ``'a' * 10**9`` cannot
allocate the machine away.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from shared.errors import Invalid

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
KINDS = ("version", "ingress")
FIELD_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
               "object": dict, "list": list}
MAX_BODY = 64 * 1024
MAX_OUTPUT = 512 * 1024
MAX_SECONDS = 2.0
MAX_SEQUENCE = 100_000
# Attribute names refused wherever they appear: ways out of plain data. format and
# format_map are str methods that read attributes named in the format string
# (CVE-2016-10745, CVE-2019-10906, CVE-2024-56326 calls them indirectly).
UNSAFE_NAMES = frozenset({"self", "mro", "format", "format_map"})


class TemplateRefused(Exception):
    """A template that must not be saved or rendered; the message says why."""


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context, operator, left, right):
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > 64:
                raise SecurityError("exponents above 64 are not allowed in templates")
            return left ** right
        # '*': sequences may only be repeated into something small
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                if len(seq) * times > MAX_SEQUENCE:
                    raise SecurityError("repeating a sequence that many times is not allowed")
        return left * right


def environment() -> _Environment:
    env = _Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    # cycler, joiner, namespace, lipsum, dict and range lead out of "plain data" or loop for ever.
    env.globals.clear()
    return env


_ENV = environment()


def _static_check(body: str) -> None:
    """Refuse what the sandbox would refuse anyway, at save time, with a reason."""
    try:
        tree = _ENV.parse(body)
    except TemplateSyntaxError as exc:
        raise TemplateRefused(f"the template is not valid jinja2 (line {exc.lineno}): {exc.message}")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Include,
                               nodes.Import, nodes.FromImport, nodes.Extends, nodes.Filter,
                               nodes.Test, nodes.Const)):
        if isinstance(node, (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
            raise TemplateRefused("templates may not include, import or extend other templates")
        if isinstance(node, (nodes.Filter, nodes.Test)):
            # |attr reads attributes by a name chosen at render time (CVE-2025-27516)
            if node.name == "attr":
                raise TemplateRefused(f"line {node.lineno}: the 'attr' filter is not allowed; "
                                      "read values as values.name or values['name']")
            continue
        if isinstance(node, nodes.Const):
            # a format string that walks attributes: '{0.__class__}'.format(...) (CVE-2016-10745)
            if isinstance(node.value, str) and "__" in node.value:
                raise TemplateRefused(f"line {node.lineno}: text with '__' in template code is not "
                                      "allowed (it is how format strings reach Python internals)")
            continue
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem):
            name = node.arg.value if isinstance(node.arg, nodes.Const) else None
        else:
            name = node.name
        if isinstance(name, str) and (name.startswith("_") or name in UNSAFE_NAMES):
            raise TemplateRefused(f"line {node.lineno}: '{name}' is not plain data; templates may only "
                                  "read the values they are given")


def check_names(body: str, given: set[str]) -> None:
    """At save time: every name a template reads is one it is given (or sets itself), so a
    lookup of ``config``, ``request``, ``cycler`` or ``lipsum`` is refused even in a branch
    the sample values do not reach."""
    tree = _ENV.parse(body)
    own = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    known = given | own | {"loop", "caller", "varargs", "kwargs"}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in known:
            raise TemplateRefused(f"line {node.lineno}: '{node.name}' is not given to templates "
                                  f"(they are given: {', '.join(sorted(given))})")


def compile_template(body: str):
    if not isinstance(body, str) or not body.strip():
        raise TemplateRefused("the template is empty")
    if len(body) > MAX_BODY:
        raise TemplateRefused(f"the template is longer than {MAX_BODY} characters")
    _static_check(body)
    return _ENV.from_string(body)


def _plain(value):
    """Only JSON data reaches a template: a round trip through JSON drops anything else."""
    return json.loads(json.dumps(value))


def render(body: str, context: dict) -> str:
    template = compile_template(body)
    data = _plain(context)  # a TypeError here is our bug, not the template's
    started = time.monotonic()
    out, size = [], 0
    try:
        for chunk in template.generate(data):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateRefused(f"the template renders more than {MAX_OUTPUT} characters")
            if time.monotonic() - started > MAX_SECONDS:
                raise TemplateRefused(f"the template takes longer than {MAX_SECONDS:g} s to render")
            out.append(chunk)
    except SecurityError as exc:
        raise TemplateRefused(f"the template tried something unsafe: {exc}")
    except UndefinedError as exc:
        raise TemplateRefused(f"the template uses a value it is not given: {exc}")
    except TemplateError as exc:
        raise TemplateRefused(f"the template failed to render: {exc}")
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateRefused(f"the template failed to render: {type(exc).__name__}: {exc}")
    return "".join(out)


# -- fields: what the deploy form asks for ------------------------------------------

def check_fields(fields) -> list[dict]:
    if fields in (None, []):
        return []
    if not isinstance(fields, list) or len(fields) > 50:
        raise Invalid("'fields' must be a list of at most 50 {name, type, default?, description?}.",
                      {"field": "fields"})
    out, seen = [], set()
    for i, field in enumerate(fields):
        where = f"fields[{i}]"
        if not isinstance(field, dict) or set(field) - {"name", "type", "default", "description"}:
            raise Invalid(f"'{where}' must be {{name, type, default?, description?}}.", {"field": where})
        name = field.get("name")
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise Invalid(f"'{where}.name' must be an identifier not starting with '_'.",
                          {"field": f"{where}.name"})
        if name in seen:
            raise Invalid(f"The field {name!r} is declared twice.", {"field": f"{where}.name"})
        seen.add(name)
        kind = field.get("type", "string")
        if kind not in FIELD_TYPES:
            raise Invalid(f"'{where}.type' must be one of {', '.join(FIELD_TYPES)}.",
                          {"field": f"{where}.type"})
        default = field.get("default", sample_value(kind))
        if not _is_type(default, kind):
            raise Invalid(f"The default of {name!r} is not of type {kind}.", {"field": f"{where}.default"})
        description = field.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise Invalid(f"'{where}.description' must be text of at most 500 characters.",
                          {"field": f"{where}.description"})
        out.append({"name": name, "type": kind, "default": default, "description": description})
    return out


def _is_type(value, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, FIELD_TYPES[kind])


def sample_value(kind: str):
    return {"string": "sample", "integer": 1, "number": 1, "boolean": True,
            "object": {}, "list": []}[kind]


def resolve_values(fields: list[dict], values: dict | None) -> dict:
    """The template's ``values``: each field's given value or its default, type-checked."""
    values = dict(values or {})
    out = {}
    for field in fields:
        name = field["name"]
        value = values.pop(name, field["default"])
        if not _is_type(value, field["type"]):
            raise Invalid(f"'values.{name}' must be of type {field['type']}.", {"field": f"values.{name}"})
        out[name] = value
    out.update(values)  # extra values are the template's business; they are plain data anyway
    return out


# -- the built-in templates ------------------------------------------------------

def builtin_templates() -> list[dict]:
    index = yaml.safe_load((TEMPLATE_DIR / "builtin.yaml").read_text())
    out = []
    for entry in index:
        out.append({"name": entry["name"], "kind": entry["kind"], "builtin": True, "app": None,
                    "description": entry.get("description", ""),
                    "fields": check_fields(entry.get("fields")),
                    "body": (TEMPLATE_DIR / entry["file"]).read_text()})
    return out


BUILTINS = {t["name"]: t for t in builtin_templates()}
DEFAULT = {"version": "default-version", "ingress": "default-ingress"}
