"""Template limits: what they cost normal renders, and how fast hostile templates are refused.

Normal renders of the built-in version template and of a 20-object custom
template (10 components × Deployment + Service, loops over 100-item values,
filters), through ``templates.render``, against a baseline built here: a plain
jinja2 ``ImmutableSandboxedEnvironment`` in this process, without limits. User
templates render in a render worker (rlimits and a wall clock, see
``services/deploy/domain/templates.py``); the built-ins are MAE's own and render
in-process, compiled once. CPU per render is this process's plus the workers'
(/proc/PID/schedstat), measured in adjacent before/after slices; each figure is
the median of the slices' ratios (the machine is shared: a burst of other work
falls on one pair).

* compile + render (user templates): every render has a body the worker has not
  seen; the baseline does what ``templates.render`` did in-process before the
  limits — the JSON round trip of the context, parse, ``templates._static_check``,
  compile, render — so that only the limits are compared.
* warm: the body is compiled already (baseline: the JSON round trip and a
  compiled template's ``render``; after: the worker's cache, or the built-in's).

Targets < 1.10: the built-in warm, the custom template compile+render and warm.
Shown, not a target: the built-in sent to a worker as if a person had written it
(the round trip's fixed cost on a small template).

Then each hostile template, with a green ticker running beside it: the time to
its refusal (target < 2 s), the reason, and how often the ticker advanced.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jinja2 import StrictUndefined  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

from services.deploy.domain import rendering, templates  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", 5))
SECONDS = float(os.environ.get("BENCH_SECONDS", 0.8))  # per measure (its count is calibrated to it)

VERSION = {"image": "registry.example.com/shop/web:1.4.2", "port": 8080, "replicas": 3,
           "env": [{"name": f"SETTING_{i}", "value": f"value-{i}"} for i in range(8)],
           "command": ["/bin/web"], "args": ["--listen", ":8080"],
           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
           "health_path": "/healthz", "values": {"progress_deadline_seconds": 600, "service_port": 80}}

# 20 objects: 10 components × (Deployment + Service), each over 100-item values with filters.
CUSTOM = """{#- a custom template: one Deployment and one Service per component -#}
{%- for c in values.components %}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ (name ~ '-' ~ c.name) | tojson }}
  namespace: {{ namespace | tojson }}
  labels: {{ labels | tojson }}
  annotations:
    description: {{ c.description | default('none') | trim | truncate(60) | tojson }}
spec:
  replicas: {{ [c.replicas | int, 1] | max }}
  selector:
    matchLabels: {{ selector | tojson }}
  template:
    metadata:
      labels: {{ selector | tojson }}
    spec:
      containers:
        - name: {{ c.name | lower | replace('_', '-') | tojson }}
          image: {{ image | tojson }}
          env:
{%- for item in values.settings %}
            - name: {{ (c.name ~ '_' ~ item.key) | upper | tojson }}
              value: {{ item.value | string | tojson }}
{%- endfor %}
          args: {{ (args + ['--component', c.name]) | tojson }}
          resources: {{ resources | tojson }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ (name ~ '-' ~ c.name) | tojson }}
  namespace: {{ namespace | tojson }}
  annotations:
    ports: {{ c.ports | join(',') | tojson }}
spec:
  selector: {{ selector | tojson }}
  ports:
{%- for p in c.ports %}
    - name: {{ 'p%d' | format(loop.index) | tojson }}
      port: {{ p }}
      targetPort: {{ port }}
{%- endfor %}
{%- endfor %}
"""
CUSTOM_VALUES = {
    "components": [{"name": f"part_{i}", "replicas": str(i % 3 + 1), "description": f"  component {i}  ",
                    "ports": [80, 443, 8000 + i]} for i in range(10)],
    "settings": [{"key": f"k{i}", "value": i * 7} for i in range(100)],
}

X = list(range(1000))
HOSTILE = {
    "three nested loops over 1000 items": "{% for a in x %}{% for b in x %}{% for c in x %}"
                                          "{% endfor %}{% endfor %}{% endfor %}",
    "chained ** (9**64)**64": "{{ (9**64)**64 }}",
    "'x'.ljust(10**9)": "{{ 'x'.ljust(10**9) }}",
    "'x'.center(10**9)": "{{ 'x'.center(10**9) }}",
    "|indent(10**9)": "{{ 'a\nb' | indent(10**9) }}",
    "'%0999999999d' % 1": "{{ '%0999999999d' % 1 }}",
    "'%0999999999d'|format(1)": "{{ '%0999999999d' | format(1) }}",
    "'{:>999999999}'.format(1)": "{{ '{:>999999999}'.format(1) }}",
    "|wordwrap(1) in a loop": "{% set s = 'a ' * 50000 %}{% for i in x %}{% set t = s | wordwrap(1) %}{% endfor %}",
    "|truncate in 10**9 silent loops": "{% for a in x %}{% for b in x %}{% for c in x %}"
                                       "{% set t = 'abcdef' | truncate(5, true, '') %}"
                                       "{% endfor %}{% endfor %}{% endfor %}",
    "'a'*1e5|replace('', 'b'*1e5)": "{{ ('a' * 100000) | replace('', 'b' * 100000) }}",
    "|join of 1e5 × 1e5 chars": "{{ (['x' * 100000] * 100000) | join }}",
    "|batch(10**9, fill)": "{{ x | batch(10**9, 'a') | list | length }}",
    "|sum(start=[]) of lists": "{{ ([[1] * 10000] * 10000) | sum(start=[]) | length }}",
    "{% set s = s ~ s %} × 20": "{% set s = 'x' * 100000 %}" + "{% set s = s ~ s %}" * 20 + "{{ s | length }}",
    "nested [..] * 1e5 printed": "{% set b = ['x' * 100] * 100000 %}{% set c = [b] * 100000 %}{{ c }}",
    "macro calling itself": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "macro doubling 2**60 calls": "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
                                  "{% set s = f(60) %}",
    "== of two 1e10-item lists": "{% set s = ['x'] * 100000 %}{% set t = ['x'] * 100000 %}"
                                 "{{ ([s] * 100000) == ([t] * 100000) }}",
    "{% set %} block of 10**9 loops": "{% set s %}{% for a in x %}{% for b in x %}{% for c in x %}x"
                                      "{% endfor %}{% endfor %}{% endfor %}{% endset %}",
}


def baseline_env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.clear()
    return env


def worker_cpu() -> float:
    """CPU seconds of the render workers: /proc/PID/schedstat's first field, in ns."""
    total = 0
    for pid in templates.pool().pids():  # all idle between measures: the pool is ours alone
        with open(f"/proc/{pid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def measure(before, after, n: int, slices: int = 8) -> dict:
    """CPU per call of ``before`` and ``after`` (this process + the render workers), in
    ``slices`` pairs of adjacent slices: a burst of other work on the shared machine
    falls on one pair, and the median of the pairs' ratios leaves it out."""
    sums = {"before": [0.0, 0.0], "after": [0.0, 0.0]}
    ratios = []
    per = max(1, n // slices)
    for _ in range(slices):
        pair = {}
        for name, fn in (("before", before), ("after", after)):
            c0, w0, t0 = time.process_time(), worker_cpu(), time.perf_counter()
            for _ in range(per):
                fn()
            pair[name] = time.process_time() - c0 + worker_cpu() - w0
            sums[name][0] += pair[name]
            sums[name][1] += time.perf_counter() - t0
        ratios.append(pair["after"] / pair["before"])
    calls = per * slices
    return {"before_us": sums["before"][0] / calls * 1e6, "after_us": sums["after"][0] / calls * 1e6,
            "after_wall_us": sums["after"][1] / calls * 1e6, "ratios": ratios}


def compare(name: str, body: str, ctx: dict, cold_too: bool = True) -> tuple[list[float], list[float]]:
    env = baseline_env()
    compiled = env.from_string(body)
    assert templates.render(body, ctx) == compiled.render(ctx), f"{name}: the worker renders differently"

    def before_cold():  # what templates.render did in-process before, without its limits
        data = json.loads(json.dumps(ctx))  # its _plain()
        tree = env.parse(next(seq))
        templates._static_check(tree)
        env.from_string(tree).render(data)

    def before_warm():
        compiled.render(json.loads(json.dumps(ctx)))

    t0 = time.perf_counter()
    env.from_string(body + "{# calibrate #}").render(ctx)
    cold_n = max(24, int(SECONDS / (time.perf_counter() - t0)))
    t0 = time.perf_counter()
    compiled.render(ctx)
    warm_n = max(48, int(SECONDS / (time.perf_counter() - t0)))
    seq = iter([body + f"\n{{# {i} #}}" for i in range(cold_n * ROUNDS * 2)])
    cold, warm = [], []
    print(f" {name}: {len(compiled.render(ctx))} characters; per measure {cold_n} compile+render, {warm_n} warm")
    for r in range(1, ROUNDS + 1):
        lines = []
        if cold_too:
            c = measure(before_cold, lambda: templates.render(next(seq), ctx), cold_n)
            cold += c["ratios"]
            lines.append(("compile+render", c))
        w = measure(before_warm, lambda: templates.render(body, ctx), warm_n)
        warm += w["ratios"]
        lines.append(("warm", w))
        for i, (what, m) in enumerate(lines):
            print(f"  {'round ' + str(r) if i == 0 else '':8s} {what + ':':15s} "
                  f"before {m['before_us'] / 1000:6.2f} ms cpu   after {m['after_us'] / 1000:6.2f} ms cpu "
                  f"({m['after_wall_us'] / 1000:5.2f} ms wall)   "
                  f"ratio {m['after_us'] / m['before_us']:.3f} (median of pairs {statistics.median(m['ratios']):.3f}), "
                  f"{m['after_us'] - m['before_us']:+.0f} µs")
    return cold, warm


def hostile() -> bool:
    ticks = [0]

    def ticker():
        while True:
            ticks[0] += 1
            eventlet.sleep(0.01)

    thread = eventlet.spawn(ticker)
    ok = True
    print(f" hostile templates (x: {len(X)} items), a green ticker every 10 ms beside each render:")
    try:
        for name, body in HOSTILE.items():
            t0 = time.perf_counter()
            templates.warm()  # a worker killed by the previous one is replaced first: not this one's time
            restart = time.perf_counter() - t0
            k0, t0 = ticks[0], time.perf_counter()
            try:
                templates.render(body, {"x": X})
                reason = "RENDERED (not refused)"
                ok = False
            except templates.TemplateRefused as exc:
                reason = str(exc)
            took = time.perf_counter() - t0
            ok = ok and took < 2.0
            print(f"  {name:34s} {took:6.3f} s  ticker +{ticks[0] - k0:<4d} "
                  f"{'(worker start ' + format(restart, '.2f') + ' s) ' if restart > 0.05 else ''}{reason}")
    finally:
        thread.kill()
    return ok


def main() -> int:
    templates.warm()
    version = rendering.version_context("shop", "web", "v1", VERSION, VERSION["values"])
    custom = {**version, "values": CUSTOM_VALUES}
    print(f"template_render: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, {ROUNDS} alternating rounds "
          f"of ~{SECONDS:g} s per measure; {templates.WORKERS} render workers, "
          f"limits {templates.MAX_SECONDS:g} s wall, {templates.MAX_MEMORY_MB} MB, {templates.MAX_CPU_SECONDS} s cpu")
    builtin = templates.BUILTINS["default-version"]["body"]
    _, builtin_warm = compare("built-in version template, in-process as the service renders it (compiled once)",
                              builtin, version, cold_too=False)
    custom_cold, custom_warm = compare("20-object custom template, in a render worker", CUSTOM, custom)
    shown = compare("built-in version template sent to a render worker, as if a person had written it",
                    builtin + "{# not the built-in #}", version)
    figures = {"built-in warm": builtin_warm, "custom compile+render": custom_cold, "custom warm": custom_warm}
    figures = {k: statistics.median(v) for k, v in figures.items()}
    print("  after vs before, median of all pairs' ratios: "
          + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()) + " (targets < 1.10); "
          f"built-in through a worker: compile+render {statistics.median(shown[0]):.3f}, "
          f"warm {statistics.median(shown[1]):.3f} (shown only)")
    refused = hostile()
    ok = max(figures.values()) < 1.10 and refused
    print("  result:", "meets the targets" if ok else "BELOW TARGET")
    templates.pool().close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
