"""Templates: jinja2 text that renders a version or an ingress into Kubernetes objects.

Templates are written by people (maintainers of an application), so they run
in jinja2's immutable sandbox with nothing in reach but plain data (dicts,
lists, strings, numbers): no globals, no loader (so no include/import/extends),
undefined names are errors (StrictUndefined), and attribute access to anything
starting with ``_`` is refused twice — statically when the template is saved
(the reason is shown to the person) and by the sandbox when it renders.

Limits. A template is a program: loops over values, ``**`` on big ints, string
methods and filters that allocate (``'x'.ljust(10**9)``, ``'%0999999999d' % 1``,
``|indent``, ``|replace``, ``|join``, ``|batch``...), ``{% set %}`` doubling a text,
macros calling themselves, ``==`` between two big nested lists... The sandbox
sees some of these (calls, attributes, some binops) and none of the others
(comparisons, ``~``, list literals, ``for`` loops, block buffers), and a single C
call such as ``'x'.ljust(10**9)`` holds the one OS thread a green service has
for as long as it takes. So every parse, compile and render of a user template
runs in a render worker (``render_pool``): a child process with ``RLIMIT_AS``
(``MAX_MEMORY_MB`` above what it needs to start), ``RLIMIT_CPU`` and a wall clock
(``MAX_SECONDS``, then SIGKILL) — the only bound that is complete, whatever the
template finds. The service waits on a pipe, so its other green threads run
meanwhile. The cost is a round trip per call: ~0.2 ms of CPU, plus a few µs per
KB of output, against ~5 ms for compiling a template, which is why the worker
caches compiled templates per body (``bench/template_render.py`` measures both). A budget inside the sandbox
would be cheaper per render but has to find every way of allocating or looping,
and misses those the sandbox has no hook for. What stays in-process is data of
known size (the body's length is checked and the context serialised as JSON
before they are sent) and MAE's own built-in templates, which no one outside
MAE writes: they render in-process, compiled once. The binop checks below
(``*``, ``**``) are kept because they give a precise reason quickly.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from itertools import islice
from pathlib import Path

import yaml
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Re-exported: callers and tests reach a template's fields through this module.
from services.deploy.domain.template_fields import FIELD_TYPES, check_fields, resolve_values, sample_value  # noqa: E402,F401

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
KINDS = ("version", "ingress")
MAX_BODY = 64 * 1024
MAX_OUTPUT = 512 * 1024
MAX_SECONDS = 1.5  # wall clock per parse/compile/render in a worker (refused before 2 s)
# A worker's address space beyond what it has after starting (~33 MB). Sized so that
# WORKERS workers at their limit and the deploy service fit k8s's 320 Mi for it together
# (2 x (33 + 64) + ~104 MiB); compiling a 30 KB template takes ~10 MB.
MAX_MEMORY_MB = 64
MAX_CPU_SECONDS = 3  # RLIMIT_CPU per request: the kernel's bound if the service is not there to kill
MAX_DIGITS = 1000  # numbers a template computes with **
MAX_SEQUENCE = 100_000
WORKERS = 2  # render workers per service process
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
            if isinstance(left, int) and isinstance(right, int) and right > 0 \
                    and (left.bit_length() - 1) * right * 0.30103 > MAX_DIGITS:
                raise SecurityError(f"the template computes a number with more than {MAX_DIGITS} digits")
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


def _check_body(body) -> None:
    if not isinstance(body, str) or not body.strip():
        raise TemplateRefused("the template is empty")
    if len(body) > MAX_BODY:
        raise TemplateRefused(f"the template is longer than {MAX_BODY} characters")


def _static_check(tree: "nodes.Template | str") -> None:
    """Refuse what the sandbox would refuse anyway, at save time, with a reason."""
    if isinstance(tree, str):
        try:
            tree = _ENV.parse(tree)
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


# -- in a render worker (render_pool): parse, compile and render --------------------

_CACHE: OrderedDict = OrderedDict()  # body -> compiled Template (in the service: the built-ins only)
# A compiled template takes ~300 bytes per character of its body (up to 170 times its size
# for 64 KiB of nothing but expressions), inside the worker's MAX_MEMORY_MB: the cache is
# bounded by its bodies' size, and emptied before a template is refused for memory.
_CACHE_CHARS = 96 * 1024


def compiled(body: str):
    """The checked and compiled template, cached per body. In a render worker (or, for the
    built-in templates, in the service: see ``render``)."""
    hit = _CACHE.get(body)
    if hit is not None:
        _CACHE.move_to_end(body)
        return hit
    _check_body(body)
    try:
        tree = _ENV.parse(body)
    except TemplateSyntaxError as exc:
        raise TemplateRefused(f"the template is not valid jinja2 (line {exc.lineno}): {exc.message}")
    _static_check(tree)
    try:
        template = _ENV.from_string(tree)
    except TemplateSyntaxError as exc:
        raise TemplateRefused(f"the template is not valid jinja2 (line {exc.lineno}): {exc.message}")
    except SyntaxError:  # Python's own limits on the generated code, e.g. 20 nested blocks
        raise TemplateRefused("the template nests blocks too deeply")
    global _cached_chars
    _CACHE[body] = template
    _cached_chars += len(body)
    while _cached_chars > _CACHE_CHARS and len(_CACHE) > 1:
        _cached_chars -= len(_CACHE.popitem(last=False)[0])
    return template


_cached_chars = 0


def clear_cache() -> bool:
    """Forget the compiled templates; whether there were any."""
    global _cached_chars
    had = bool(_CACHE)
    _CACHE.clear()
    _cached_chars = 0
    return had


def check_names_here(body: str, given: set[str]) -> None:
    compiled(body)  # the static checks and their reasons first
    tree = _ENV.parse(body)
    own = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")} | \
        {n.name for n in tree.find_all(nodes.Macro)}
    known = given | own | {"loop", "caller", "varargs", "kwargs"}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name not in known:
            raise TemplateRefused(f"line {node.lineno}: '{node.name}' is not given to templates "
                                  f"(they are given: {', '.join(sorted(given))})")


def render_here(body: str, data: dict) -> str:
    """Render here, without limits but on the output's length: in a render worker, or a
    built-in template. ``data`` is plain already (it came through JSON)."""
    template = compiled(body)
    out, size = [], 0
    try:
        # as Template.render does, minus its traceback rewriting; the length is counted a
        # batch of chunks at a time, in C (a Python loop per chunk would cost ~5 % of a render)
        chunks = template.root_render_func(template.new_context(data))
        while batch := list(islice(chunks, 1024)):
            size += sum(map(len, batch))
            if size > MAX_OUTPUT:
                raise TemplateRefused(f"the template renders more than {MAX_OUTPUT} characters")
            out += batch
        return "".join(out)
    except SecurityError as exc:
        raise TemplateRefused(f"the template tried something unsafe: {exc}")
    except UndefinedError as exc:
        raise TemplateRefused(f"the template uses a value it is not given: {exc}")
    except TemplateError as exc:
        raise TemplateRefused(f"the template failed to render: {exc}")
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError, AttributeError) as exc:
        raise TemplateRefused(f"the template failed to render: {type(exc).__name__}: {exc}")


# -- in the service: each call is one request to a render worker ----------------------

_POOL = None


def pool():
    global _POOL
    if _POOL is None:
        from services.deploy.domain.render_pool import Pool

        _POOL = Pool(WORKERS, MAX_MEMORY_MB, MAX_CPU_SECONDS)
    return _POOL


def warm() -> None:
    """Start a render worker now rather than at the first render (~0.2 s)."""
    pool().warm()


def _ask(request: dict) -> dict:
    from services.deploy.domain.render_pool import Died, Late

    _check_body(request["body"])
    try:
        reply = pool().call(request, MAX_SECONDS)
    except Late:
        raise TemplateRefused(f"the template takes longer than {MAX_SECONDS:g} s to render") from None
    except Died:
        raise TemplateRefused(f"the template was stopped: rendering it needs more than {MAX_CPU_SECONDS} s "
                              f"of CPU or {MAX_MEMORY_MB} MB of memory") from None
    if "refused" in reply:
        raise TemplateRefused(reply["refused"])
    return reply


def check_names(body: str, given: set[str]) -> None:
    """At save time: every name a template reads is one it is given (or sets itself), so a
    lookup of ``config``, ``request``, ``cycler`` or ``lipsum`` is refused even in a branch
    the sample values do not reach."""
    _ask({"op": "names", "body": body, "given": sorted(given)})


def compile_template(body: str) -> None:
    """Refuse, with the reason, a template that does not pass the static checks or does not
    compile (in a render worker: compiling a 64 KiB template is work too)."""
    _ask({"op": "check", "body": body})


def render(body: str, context: dict) -> str:
    """The rendered text. Only JSON data reaches a template: ``context`` goes through JSON (a
    TypeError here is our bug, not the template's). MAE's own built-in templates render here,
    in-process: they are reviewed code whose work grows with their values only, as any of
    MAE's own code does; what people write goes to a render worker."""
    if isinstance(body, str) and body in _builtin_bodies():
        return render_here(body, json.loads(json.dumps(context)))
    return _ask({"op": "render", "body": body, "context": context})["text"]


def _builtin_bodies() -> frozenset[str]:
    global _BUILTIN_BODIES
    if _BUILTIN_BODIES is None:
        _BUILTIN_BODIES = frozenset(t["body"] for t in BUILTINS.values())
    return _BUILTIN_BODIES


_BUILTIN_BODIES = None


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
