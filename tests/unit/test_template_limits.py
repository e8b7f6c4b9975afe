"""Template limits: hostile templates are refused, with the reason, within 2 s, while the
process goes on (a green ticker keeps ticking); normal templates render as plain jinja2 does.

User templates render in render workers (services/deploy/domain/render_pool.py): RLIMIT_AS,
RLIMIT_CPU and a wall clock. Each hostile render below is timed from a warm pool: starting a
replacement for a worker the previous attack got killed is not the template's time.
"""
import os
import time

import eventlet
import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.deploy.domain import rendering, templates
from services.deploy.domain.templates import TemplateRefused

X = list(range(1000))
SLOW = rf"takes longer than {templates.MAX_SECONDS:g} s"
MEMORY = rf"needs more than {templates.MAX_MEMORY_MB} MB of memory"
LOOPS = "{% for a in x %}{% for b in x %}{% for c in x %}BODY{% endfor %}{% endfor %}{% endfor %}"

# name: (template, the reason it is refused for). Rendered with x = 1000 items.
HOSTILE = {
    "nested loops that print nothing": (LOOPS.replace("BODY", ""), SLOW),
    "chained **": ("{{ (9**64)**64 }}", "more than 1000 digits"),
    "str.ljust(10**9)": ("{{ 'x'.ljust(10**9) }}", MEMORY),
    "str.center(10**9)": ("{{ 'x'.center(10**9) }}", MEMORY),
    "|indent(10**9)": ("{{ 'a\nb' | indent(10**9) }}", MEMORY),
    "'%0999999999d' % 1": ("{{ '%0999999999d' % 1 }}", MEMORY),
    "|format with a huge width": ("{{ '%0999999999d' | format(1) }}", MEMORY),
    "str.format with a huge width": ("{{ '{:>999999999}'.format(1) }}", "'format' is not plain data"),
    "|wordwrap(1) in a loop": ("{% set s = 'a ' * 50000 %}{% for i in x %}{% set t = s | wordwrap(1) %}"
                               "{% endfor %}", SLOW),
    "|truncate in silent loops": (LOOPS.replace("BODY", "{% set t = 'abcdef' | truncate(5, true, '') %}"), SLOW),
    "|replace('', huge)": ("{{ ('a' * 100000) | replace('', 'b' * 100000) }}", MEMORY),
    "|join of a huge sequence": ("{{ (['x' * 100000] * 100000) | join }}", MEMORY),
    "|batch with a huge fill": ("{{ x | batch(10**9, 'a') | list | length }}", MEMORY),
    "|sum(start=[]) of lists": ("{{ ([[1] * 10000] * 10000) | sum(start=[]) | length }}", SLOW),
    "{% set %} doubling past MAX_SEQUENCE": ("{% set s = 'x' * 100000 %}" + "{% set s = s ~ s %}" * 20
                                            + "{{ s | length }}", MEMORY),
    "nested repetition printed": ("{% set b = ['x' * 100] * 100000 %}{% set c = [b] * 100000 %}{{ c }}", MEMORY),
    "a macro calling itself": ("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", "too deeply"),
    "a macro doubling its calls": ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
                                   "{% set s = f(60) %}", SLOW),
    "== of two 10**10-item lists": ("{% set s = ['x'] * 100000 %}{% set t = ['x'] * 100000 %}"
                                    "{{ ([s] * 100000) == ([t] * 100000) }}", SLOW),
    "a {% set %} block of 10**9 loops": ("{% set s %}" + LOOPS.replace("BODY", "x") + "{% endset %}",
                                         f"({SLOW}|{MEMORY})"),
    "printing 10**6 numbers": ("{% for a in x %}{% for b in x %}{{ a }}{{ b }}{% endfor %}{% endfor %}",
                               f"renders more than {templates.MAX_OUTPUT} characters"),
    "parentheses 30000 deep": ("{{ " + "(" * 30000 + "1" + ")" * 30000 + " }}", "too deeply"),
    "25 nested blocks": ("{% for a in x %}" * 25 + "{% endfor %}" * 25, "nests blocks too deeply"),
}

TICK = 0.01


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_template_is_refused_within_2_s_while_the_process_goes_on(name):
    body, reason = HOSTILE[name]
    templates.warm()
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            eventlet.sleep(TICK)

    thread = eventlet.spawn(ticker)
    eventlet.sleep(0)  # its first tick
    started = time.monotonic()
    try:
        with pytest.raises(TemplateRefused, match=reason):
            templates.render(body, {"x": X})
        ended = time.monotonic()
    finally:
        thread.kill()
    took = ended - started
    assert took < 2.0, f"{name}: refused after {took:.2f} s"
    during = [t for t in ticks if started <= t <= ended]
    # the ticker ran all along: at least a fifth of the ticks it could make, no gap of 0.5 s
    assert len(during) >= int(took / TICK / 5), f"{name}: {len(during)} ticks in {took:.2f} s"
    moments = [started] + during + [ended]
    assert max(b - a for a, b in zip(moments, moments[1:])) < 0.5


def test_the_pool_keeps_to_its_size_after_killing_workers():
    for _ in range(2):
        with pytest.raises(TemplateRefused, match="memory"):
            templates.render(HOSTILE["str.ljust(10**9)"][0], {})
    eventlet.sleep(0.5)  # the background replacements have started, the killed are reaped
    children = _children()
    assert 1 <= len(children) <= templates.WORKERS, children
    assert all(state != "Z" for state in children.values()), children
    assert templates.render("{{ a }}", {"a": 1}) == "1"


def test_normal_renders_go_on_next_to_a_hostile_one():
    templates.warm()
    hostile = eventlet.spawn(templates.render, HOSTILE["nested loops that print nothing"][0], {"x": X})
    eventlet.sleep(0.05)  # it holds a worker now
    started = time.monotonic()
    for i in range(20):
        assert templates.render("{{ n }}-{{ items | join(',') }}", {"n": i, "items": X[:5]}) == f"{i}-0,1,2,3,4"
    assert time.monotonic() - started < 1.0
    with pytest.raises(TemplateRefused, match=SLOW):
        hostile.wait()


def _children() -> dict[int, str]:
    me, out = os.getpid(), {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if int(fields[1]) == me and b"render_pool.py" in cmd:
                out[int(entry)] = fields[0]
    return out


# -- normal templates render as plain jinja2 renders them ---------------------------

def plain_env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()
    return env


VERSION = {"image": "nginx:1.25", "port": 8080, "replicas": 3, "env": [{"name": f"E{i}", "value": str(i)}
                                                                      for i in range(100)],
           "command": ["/bin/app"], "args": ["--x"], "resources": {"limits": {"memory": "256Mi"}},
           "health_path": "/healthz", "values": {"progress_deadline_seconds": 30, "service_port": 80}}
INGRESS = {"name": "www", "host": "shop.example.com", "tls": {"secret_name": "shop-tls"},
           "routes": [{"path": f"/p{i}", "service": "web", "version": "v1", "port": None} for i in range(100)],
           "values": {"ingress_class": "nginx"}}
NORMAL = """\
{%- for item in values.rows %}
- {{ item.name | upper | replace('_', '-') | center(20) | tojson }}: {{ '%05d' % item.n }} {{ item.name.ljust(10) }}|
  note: {{ item.note | wordwrap(40) | indent(4) | truncate(60) | tojson }}
  sum: {{ item.parts | sum }} {{ item.parts | join('+') }} {{ 'p%d-%s' | format(item.n, item.name) }}
{%- endfor %}
batches: {% for b in values.rows | map(attribute='n') | batch(30) %}{{ b | sum }};{% endfor %}
total: {{ values.rows | map(attribute='n') | sum }} {{ (values.rows | length) * 2 ** 10 }}
{% macro row(x) %}[{{ x }}]{% endmacro -%}
{% set joined %}{% for i in values.rows[:10] %}{{ row(i.n) }}{% endfor %}{% endset %}{{ joined }}
"""
NORMAL_VALUES = {"rows": [{"name": f"item_{i}", "n": i, "parts": [i, i + 1, i + 2],
                            "note": "a long note about the item " * 4} for i in range(100)]}


def test_the_builtin_templates_render_as_plain_jinja2_renders_them():
    env = plain_env()
    version = rendering.version_context("shop", "web", "v1", VERSION, VERSION["values"])
    ingress = rendering.ingress_context("shop", INGRESS, INGRESS["values"])
    for name, ctx in (("default-version", version), ("default-ingress", ingress)):
        body = templates.BUILTINS[name]["body"]
        expected = env.from_string(body).render(ctx)
        assert templates.render(body, ctx) == expected
        # the same body, were it a person's, through a render worker
        assert templates.render(body + "{# mine #}", ctx) == expected
    assert len(rendering.render_version(templates.BUILTINS["default-version"], "shop", "web", "v1", VERSION)) == 2


def test_the_builtin_templates_render_in_process():
    real = templates.pool
    templates.pool = lambda: pytest.fail("a built-in template went to a render worker")
    try:
        version = rendering.version_context("shop", "web", "v1", VERSION, VERSION["values"])
        assert "kind: Deployment" in templates.render(templates.BUILTINS["default-version"]["body"], version)
    finally:
        templates.pool = real


def test_loops_over_100_items_and_filters_used_normally_render_identically():
    expected = plain_env().from_string(NORMAL).render(values=NORMAL_VALUES)
    assert templates.render(NORMAL, {"values": NORMAL_VALUES}) == expected
    assert expected.count("ITEM-") == 100 and "[0][1][2]" in expected


def test_a_save_time_check_runs_in_a_worker_too():
    templates.compile_template(NORMAL)
    templates.check_names(NORMAL, {"values"})
    with pytest.raises(TemplateRefused, match="'other' is not given"):
        templates.check_names(NORMAL + "{{ other }}", {"values"})
    with pytest.raises(TemplateRefused, match="too deeply"):
        templates.compile_template(HOSTILE["parentheses 30000 deep"][0])
