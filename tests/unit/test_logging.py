import json
import logging

from shared.logging import CallContextFilter, JsonFormatter, _local


def test_log_lines_are_json_with_the_workers_call_id_and_extras():
    record = logging.makeLogRecord({"name": "mae.deploy", "levelno": logging.INFO,
                                    "levelname": "INFO", "msg": "applied %s", "args": ("web",),
                                    "record_id": 42})
    _local.call_id, _local.call_id_stack = "deploy.apply.1", ["gateway.x.0", "deploy.apply.1"]
    try:
        CallContextFilter().filter(record)
    finally:
        _local.call_id = _local.call_id_stack = None
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "applied web"
    assert line["level"] == "info"
    assert line["call_id"] == "deploy.apply.1"
    assert line["call_id_stack"] == ["gateway.x.0", "deploy.apply.1"]
    assert line["record_id"] == 42
    assert line["time"].endswith("Z")


def test_log_lines_carry_the_trace_id_while_tracing_is_on(span_exporter):
    from shared import tracing

    record = logging.makeLogRecord({"name": "mae.cluster", "levelno": logging.INFO, "levelname": "INFO",
                                    "msg": "applied"})
    with tracing.span("cluster.on_apply_requested", only_in_trace=False) as span:
        CallContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


def test_log_lines_have_no_trace_fields_when_tracing_is_off():
    record = logging.makeLogRecord({"name": "x", "levelno": logging.INFO, "levelname": "INFO", "msg": "m"})
    CallContextFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert "trace_id" not in line and "span_id" not in line
