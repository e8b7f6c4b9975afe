"""Acceptance for operating MAE: metrics that move, and one trace across processes.

1. Every process's ``/metrics`` (gateway and each service, at the ports
   ``scripts/stack.py`` gives them) is scraped before and after a deploy journey
   on the shared e2e stack: the key series exist and move.
2. A stack of its own, started with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at an
   in-process OTLP/HTTP collector (this file's ``Collector``: it accepts
   ``/v1/traces`` protobuf and decodes it with opentelemetry-proto), deploys once;
   the collector sees ONE trace id with spans from the gateway, the deploy
   service and the cluster service, including the cluster API calls. The shared
   stack stays untraced.
"""
from __future__ import annotations

import gzip
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scripts.stack import METRICS_PORTS, SERVICES
from tests.e2e.conftest import Api
from tests.kube import kubectl
from tests.waiting import waiter


wait_for = waiter(timeout=60.0, interval=0.25)

# -- scraping -------------------------------------------------------------------------------

def metrics_urls(stack) -> dict[str, str]:
    urls = {"gateway": stack.url + "/metrics"}
    for name in SERVICES:
        urls[name] = f"http://{stack.host}:{METRICS_PORTS[name] + stack.port_offset}/metrics"
    return urls


def scrape(url: str) -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value} of one ``/metrics`` page."""
    resp = requests.get(url, timeout=10)
    assert resp.status_code == 200, (url, resp.status_code)
    samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, **labels) -> float:
    """Sum of every sample called ``name`` whose labels include ``labels``."""
    return sum(value for (sample, have), value in samples.items()
               if sample == name and all((k, v) in have for k, v in labels.items()))


def present(samples: dict, name: str, **labels) -> bool:
    return any(sample == name and all((k, v) in have for k, v in labels.items())
               for (sample, have) in samples)


def scrape_all(stack) -> dict[str, dict]:
    return {name: scrape(url) for name, url in metrics_urls(stack).items()}


def test_every_process_exposes_metrics_that_move_during_a_deploy(stack, admin, clusters):
    from tests.fakes.webhook import FakeWebhook

    test_cluster = next(n for n, info in clusters.items() if info["env"] == "test")
    wait_for(lambda: admin.get(f"/clusters/{test_cluster}").json().get("healthy"), what="the test cluster")
    app = f"obs-{uuid.uuid4().hex[:6]}"
    assert admin.post("/apps", json={"name": app}).status_code == 201
    with FakeWebhook() as hook:
        channel = admin.post(f"/apps/{app}/channels", json={
            "name": "obs", "type": "webhook", "url": hook.url, "events": ["deploy.succeeded", "deploy.failed"]})
        assert channel.status_code == 201, channel.text
        assert admin.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
        version = admin.post(f"/apps/{app}/services/web/versions",
                             json={"name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 1})
        assert version.status_code == 201, version.text
        # The namespace follows the app onto the cluster (an event away): wait for it,
        # so that the deploy below is one that succeeds.
        kubeconfig = clusters[test_cluster]["kubeconfig"]
        wait_for(lambda: kubectl("get", "namespace", app, kubeconfig=kubeconfig, timeout=30).returncode == 0,
                 what=f"namespace {app}")

        before = scrape_all(stack)
        # By name: service tests that share this run's database may leave clusters behind.
        resp = admin.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": [test_cluster]})
        assert resp.status_code == 202, resp.text
        record_id = resp.json()["record_id"]
        record = wait_for(lambda: (lambda r: r if r.get("finished_at") else None)(
            admin.get(f"/records/{record_id}").json()), what=f"record {record_id} to finish")
        assert record["status"] == "succeeded", (record.get("reason"), record.get("targets"))
        hook.wait_for(1, timeout=30)
        # Give the operator a heartbeat and the batch handlers a beat to settle.
        time.sleep(1.0)
        after = scrape_all(stack)

    for name in ("gateway", *SERVICES):
        assert present(after[name], "mae_entrypoint_duration_seconds_count"), name
        assert present(after[name], "process_cpu_seconds_total") or present(after[name], "python_info"), name
    for name in SERVICES:
        assert present(after[name], "mae_db_pool_checked_out", service=name), name
        assert present(after[name], "mae_db_pool_overflow", service=name), name
        assert present(after[name], "mae_outbox_backlog", service=name), name
        assert total(after[name], "mae_amqp_connected", service=name) == 1, name
    assert total(after["gateway"], "mae_amqp_connected", service="gateway") == 1

    def moved(name, metric, **labels):
        return total(after[name], metric, **labels) - total(before[name], metric, **labels)

    # The gateway: the deploy request, its answer by status, the RPC calls it made.
    assert moved("gateway", "mae_http_requests_total", entrypoint="deploy_version", method="POST",
                 status="202") >= 1
    assert moved("gateway", "mae_entrypoint_duration_seconds_count", kind="http") >= 2
    assert moved("gateway", "mae_rpc_client_duration_seconds_count", target="deploy",
                 method="deploy_version") == 1
    # deploy: the RPC, the record's end, the events it consumed (with their lag), what it published.
    assert moved("deploy", "mae_entrypoint_duration_seconds_count", kind="rpc", entrypoint="deploy_version") == 1
    assert moved("deploy", "mae_deploys_finished_total", action="deploy", outcome="succeeded") >= 1
    assert moved("deploy", "mae_deploy_duration_seconds_count", action="deploy", outcome="succeeded") >= 1
    assert moved("deploy", "mae_event_lag_seconds_count", handler="on_cluster_status") >= 1
    assert moved("deploy", "mae_events_published_total", event="deploy.apply_requested") >= 1
    assert present(after["deploy"], "mae_deploy_targets", state="progressing")
    assert present(after["deploy"], "mae_deploy_target_oldest_seconds", state="applying")
    # cluster: the apply request handled (lag), the cluster API calls, operator reports.
    assert moved("cluster", "mae_event_lag_seconds_count", handler="on_apply_requested") >= 1
    assert moved("cluster", "mae_cluster_api_duration_seconds_count", cluster=test_cluster) >= 1
    assert moved("cluster", "mae_operator_reports_total", cluster=test_cluster) >= 1
    assert moved("cluster", "mae_operator_report_items_total", cluster=test_cluster, outcome="accepted") >= 1
    assert 0 <= total(after["cluster"], "mae_operator_last_report_age_seconds", cluster=test_cluster) < 30
    assert total(after["cluster"], "mae_cluster_reachable", cluster=test_cluster) == 1
    # notify: the deploy.succeeded notice delivered.
    assert moved("notify", "mae_notify_deliveries_total", channel_type="webhook", outcome="delivered") >= 1
    assert moved("notify", "mae_event_lag_seconds_count", handler="on_deploy_succeeded") >= 1
    # server: the expiring gauge is there for every threshold.
    assert present(after["server"], "mae_servers_expiring", within_days="0")
    assert present(after["server"], "mae_servers_expiring", within_days="30")


# -- tracing ------------------------------------------------------------------------------

class Collector:
    """A minimal OTLP/HTTP trace receiver: POST /v1/traces, protobuf in, spans kept."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest, ExportTraceServiceResponse)

        self.spans: list[dict] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces" or "protobuf" not in (self.headers.get("Content-Type") or ""):
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                found = []
                for resource_spans in request.resource_spans:
                    attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            found.append({"service": attrs.get("service.name"), "name": span.name,
                                          "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                                          "parent": span.parent_span_id.hex(), "kind": span.kind})
                with collector.lock:
                    collector.spans.extend(found)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.spans)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _ports_free(ports) -> bool:
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _free_offset() -> int:
    """A port offset whose six metrics ports are free (away from the shared stack's range)."""
    import random

    for _ in range(50):
        offset = random.randint(2000, 2800)
        if _ports_free(METRICS_PORTS[name] + offset for name in SERVICES):
            return offset
    raise RuntimeError("no free metrics ports")


@pytest.fixture(scope="module")
def traced(infra, secret_key, tmp_path_factory):
    """A stack of its own (database, vhost, Redis prefix, ports) that sends spans to a Collector."""
    from scripts.stack import admin_token
    from tests.e2e.conftest import own_backends, running_stack

    collector = Collector()
    try:
        with own_backends(infra, "otel") as backends:
            env = {**backends, "MAE_SECRET_KEY": secret_key,
                   "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
            with running_stack(tmp_path_factory.mktemp("traced"), env, port_offset=_free_offset(),
                               localauth_port=0) as stack:
                token, _ = admin_token(stack)
                yield stack, collector, Api(stack.url, token)
    finally:
        collector.stop()


def tree(spans: list[dict]) -> str:
    children: dict[str, list[dict]] = {}
    for s in spans:
        children.setdefault(s["parent"], []).append(s)
    lines = []

    def walk(parent: str, depth: int):
        for s in children.get(parent, []):
            lines.append(f"{'  ' * depth}{s['service']}: {s['name']}")
            walk(s["span_id"], depth + 1)
    walk("", 0)
    return "\n".join(lines)


def test_one_trace_spans_gateway_deploy_and_cluster_for_one_deploy(traced):
    stack, collector, admin = traced
    info = stack.start_sandbox("traced", 0, ready_delay=0.2, backoff=0.3)
    stack.register_cluster(admin.token, "traced", "test", info)
    app = f"tr-{uuid.uuid4().hex[:6]}"
    assert admin.post("/apps", json={"name": app}).status_code == 201
    assert admin.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    assert admin.post(f"/apps/{app}/services/web/versions",
                      json={"name": "v1", "image": "nginx:1.25", "port": 80, "replicas": 1}).status_code == 201
    resp = admin.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": ["traced"]})
    assert resp.status_code == 202, resp.text

    route = "POST /api/v1/apps/<app>/services/<svc>/versions/<ver>/deploy"

    def one_trace():
        spans = collector.snapshot()
        roots = [s for s in spans if s["service"] == "gateway" and s["name"] == route]
        if not roots:
            return None
        trace_id = roots[-1]["trace_id"]
        mine = [s for s in spans if s["trace_id"] == trace_id]
        names = {(s["service"], s["name"]) for s in mine}
        ids = {s["span_id"] for s in mine}
        complete = all(s["parent"] in ids for s in mine if s["parent"])  # spans arrive as they end
        wanted = {("deploy", "deploy.deploy_version"), ("cluster", "cluster.on_apply_requested")}
        has_k8s = any(s["service"] == "cluster" and s["name"].startswith("k8s ") for s in mine)
        return mine if wanted <= names and has_k8s and complete else None

    mine = wait_for(one_trace, timeout=40, what="one trace across gateway, deploy and cluster")
    print(tree(mine))  # shown when an assertion below fails
    by_name = {(s["service"], s["name"]) for s in mine}
    assert ("deploy", "deploy.deploy_version") in by_name           # the RPC, server side
    assert ("gateway", "deploy.deploy_version") in by_name          # the RPC, client side
    assert ("cluster", "cluster.on_apply_requested") in by_name     # the event, consumed
    ids = {s["span_id"] for s in mine}
    assert sum(1 for s in mine if not s["parent"]) == 1, "one root: the gateway's request"
    assert all(s["parent"] in ids for s in mine if s["parent"]), "every other span's parent is in the trace"
