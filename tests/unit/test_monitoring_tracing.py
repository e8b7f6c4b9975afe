"""Tracing: off by default and then inert; when on, context goes out and comes back in headers."""
from __future__ import annotations

from opentelemetry import trace

from shared import tracing


def test_off_by_default_installs_nothing_and_adds_nothing(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    # A process that was never configured (the suite never gives this process an endpoint).
    monkeypatch.setattr(tracing, "_provider", None)
    monkeypatch.setattr(tracing, "_tracer", None)
    monkeypatch.setattr(tracing, "ENABLED", False)
    assert tracing.configure("deploy", {}) is False
    assert tracing.ENABLED is False
    # the API's default (proxy/no-op) provider, not the SDK's
    assert type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.trace")
    assert tracing.headers_for() == {}
    assert tracing.current_ids() is None
    assert tracing.start_client_span("x") is None
    with tracing.span("k8s GET") as span:
        assert span is None


def test_a_span_context_travels_as_nameko_headers_and_is_continued(span_exporter):
    with tracing.span("gateway request", only_in_trace=False) as parent:
        client = tracing.start_client_span("deploy.deploy_version")
        headers = tracing.message_headers(tracing.headers_for(client))
        tracing.end_span(client)
    assert set(headers) == {"nameko.traceparent"}
    # what nameko gives the receiving worker: the header without its prefix
    received = {key[len("nameko."):]: value for key, value in headers.items()}
    child = tracing._tracer.start_span("deploy handles", context=tracing._parent(received))
    child.end()
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert spans["deploy handles"].context.trace_id == parent.get_span_context().trace_id
    assert spans["deploy handles"].parent.span_id == spans["deploy.deploy_version"].context.span_id
    assert spans["deploy.deploy_version"].parent.span_id == parent.get_span_context().span_id


def test_spans_without_a_trace_are_not_started_for_stray_calls(span_exporter):
    with tracing.span("k8s GET") as span:
        assert span is None
    assert span_exporter.get_finished_spans() == ()


def test_an_error_marks_the_client_span(span_exporter):
    with tracing.span("root", only_in_trace=False):
        client = tracing.start_client_span("org.get_role")
        tracing.end_span(client, TimeoutError("no answer"))
    [span] = [s for s in span_exporter.get_finished_spans() if s.name == "org.get_role"]
    assert span.status.status_code == trace.StatusCode.ERROR


def test_a_domain_answer_is_not_an_error_on_the_client_span(span_exporter):
    from shared.errors import NotFound, Unavailable

    with tracing.span("root", only_in_trace=False):
        tracing.end_span(tracing.start_client_span("org.get_app"), NotFound("No such app.", {}))
        tracing.end_span(tracing.start_client_span("deploy.get_record"), Unavailable("No answer.", {}))
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert spans["org.get_app"].status.status_code == trace.StatusCode.UNSET
    assert spans["org.get_app"].attributes["error.type"] == "NotFound"
    assert spans["deploy.get_record"].status.status_code == trace.StatusCode.ERROR
