"""The dashboard and alert rules in k8s/monitoring/ use only metrics the code registers.

Every PromQL expression is parsed for its metric names and the label names of
its selectors; each name must be registered by the processes' own modules
(imported here as ``nameko run`` imports them), and each selector label must
be one of that metric's labels. A renamed metric or label fails this test
instead of leaving a silent, empty panel or an alert that can never fire.
"""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest
import yaml

MONITORING = Path(__file__).resolve().parents[2] / "k8s" / "monitoring"
MODULES = ["gateway.service", "services.auth.service", "services.org.service", "services.deploy.service",
           "services.cluster.service", "services.server.service", "services.notify.service"]
# Labels Prometheus adds to every scraped series, and histogram buckets' own.
TARGET_LABELS = {"instance", "job", "namespace", "pod", "container"}

SELECTOR = re.compile(r"\b(mae_[a-zA-Z0-9_:]*)\s*(\{[^}]*\})?")
LABEL_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"")


def registered() -> dict[str, set[str]]:
    """{sample name: label names} of every metric the processes register."""
    from prometheus_client import REGISTRY

    from shared.metrics import SCRAPE_TIME_GAUGES

    for module in MODULES:
        importlib.import_module(module)
    names: dict[str, set[str]] = {}
    for collector, samples in list(REGISTRY._collector_to_names.items()):
        labels = set(getattr(collector, "_labelnames", ()))
        for sample in samples:
            names[sample] = labels | ({"le"} if sample.endswith("_bucket") else set())
    for name, labels in SCRAPE_TIME_GAUGES.items():
        names[name] = set(labels)
    return names


def dashboard_expressions() -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                found.append(node["expr"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((MONITORING / "dashboard.json").read_text()))
    return found


def rule_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load((MONITORING / "alerts.yaml").read_text())
    return [(rule["alert"], rule["expr"]) for group in rules["groups"] for rule in group["rules"]]


def used(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names in its selector) for each selector of ``expr``."""
    return [(name, {m.group(1) for m in LABEL_MATCHER.finditer(braces or "")})
            for name, braces in SELECTOR.findall(expr)]


def test_the_parser_finds_names_and_selector_labels():
    assert used('sum by (le) (rate(mae_x_bucket{a="1", b=~"2|3"}[5m])) / mae_y') == \
        [("mae_x_bucket", {"a", "b"}), ("mae_y", set())]


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_and_label_used_is_registered(source):
    names = registered()
    expressions = dashboard_expressions() if source == "dashboard" else [e for _, e in rule_expressions()]
    assert expressions, f"no expressions found in the {source}"
    problems = []
    for expr in expressions:
        selectors = used(expr)
        if not selectors:
            problems.append(f"uses no MAE metric: {expr}")
        for name, labels in selectors:
            if name not in names:
                problems.append(f"{name} is not registered (in: {expr.strip()[:120]})")
            elif labels - names[name] - TARGET_LABELS:
                problems.append(f"{name} has no label(s) {sorted(labels - names[name])} (in: {expr.strip()[:120]})")
    assert not problems, "\n".join(problems)


def test_the_alerts_cover_what_an_operator_is_paged_for():
    alerts = dict(rule_expressions())
    wanted = {"mae_deploys_finished_total": "deploy failure rate", "mae_deploy_target_oldest_seconds": "stuck targets",
              "mae_operator_last_report_age_seconds": "operator silent", "mae_outbox_oldest_seconds": "outbox backlog",
              "mae_event_lag_seconds_bucket": "handler lag", "mae_servers_expiring": "expiring servers"}
    for metric, what in wanted.items():
        assert any(metric in expr for expr in alerts.values()), f"no alert on {what} ({metric})"
    for group in yaml.safe_load((MONITORING / "alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_labels_stay_bounded():
    """No metric is labelled by something that grows with use (ids, users, apps, paths)."""
    unbounded = {"id", "record_id", "user", "username", "app", "path", "event_id", "request_id", "url"}
    for name, labels in registered().items():
        if name.startswith("mae_"):
            assert not labels & unbounded, (name, labels & unbounded)


def test_the_amqp_gauge_follows_the_consumers_connection():
    from types import SimpleNamespace

    from nameko.messaging import QueueConsumer

    from shared.metrics import AMQP_CONNECTED, AMQP_CONNECTION_ERRORS

    consumer = QueueConsumer.__new__(QueueConsumer)
    consumer.container = SimpleNamespace(service_name="gauge-test",
                                         config={"AMQP_URI": "pyamqp://guest:guest@127.0.0.1:1/"})
    consumer._consumers_ready = SimpleNamespace(ready=lambda: True)
    consumer.on_consume_ready(None, None, [])
    assert AMQP_CONNECTED.labels("gauge-test")._value.get() == 1
    before = AMQP_CONNECTION_ERRORS.labels("gauge-test")._value.get()
    consumer.on_connection_error(ConnectionRefusedError("down"), 2)
    assert AMQP_CONNECTED.labels("gauge-test")._value.get() == 0
    assert AMQP_CONNECTION_ERRORS.labels("gauge-test")._value.get() == before + 1


def test_database_gauges_are_cached_and_vanish_when_the_database_fails(monkeypatch):
    from contextlib import contextmanager

    from prometheus_client.core import GaugeMetricFamily

    from shared import metrics

    calls = {"n": 0}

    def families(conn, now):
        calls["n"] += 1
        if conn == "broken":
            raise OSError("database down")
        family = GaugeMetricFamily("mae_test_rows", "rows", labels=["state"])
        family.add_metric(["x"], calls["n"])
        return [family]

    class Engine:
        def __init__(self, conn):
            self.conn = conn

        @contextmanager
        def connect(self):
            yield self.conn

    monkeypatch.setitem(metrics._engines, "gauges-test", Engine("ok"))
    gauges = metrics.DatabaseGauges("gauges-test", families, ttl=60)
    first = gauges.collect()
    assert first[0].samples[0].value == 1
    assert gauges.collect() is first and calls["n"] == 1, "cached within the ttl"
    monkeypatch.setitem(metrics._engines, "gauges-test", Engine("broken"))
    gauges._cached = None
    assert gauges.collect() == []
