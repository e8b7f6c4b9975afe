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
