"""The cluster service's read side as plain functions: pod rows and why a pod does not run,
event rows, log parameters, the relay that prefixes and merges pods' log streams (and closes
every upstream when its reader leaves), and a Warning event as a record's log line."""
import eventlet
import pytest
import urllib3

from services.cluster.domain import logs, runtime
from services.cluster.mke import logstream
from services.deploy.domain import names
from services.deploy.domain.refusals import warning_lines
from shared.errors import Invalid


def pod(name="web-v1-abc-1", waiting=None, restarts=0, ready=True, last=None):
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2030-01-01T00:00:00Z"}}
    status = {"restartCount": restarts, "state": state, "ready": ready}
    if last:
        status["lastState"] = {"terminated": {"reason": last}}
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "web"}, {"name": "sidecar"}]},
            "status": {"phase": "Running", "startTime": "2030-01-01T00:00:00Z",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [status, {"restartCount": 1, "state": {"running": {}}, "ready": True}]}}


def test_the_selector_is_the_one_the_deploy_service_renders():
    want = names.selector("shop", "web", "v1")
    assert runtime.selector("shop", "web", "v1") == ",".join(f"{k}={v}" for k, v in want.items())
    assert runtime.selector("shop") == "mae.io/app=shop"


def test_pod_rows_say_why_a_pod_does_not_run():
    row = runtime.pod_row("test", pod())
    assert row == {"cluster": "test", "name": "web-v1-abc-1", "phase": "Running", "ready": True, "restarts": 1,
                   "reason": None, "started_at": "2030-01-01T00:00:00Z", "container": "web"}
    crashing = runtime.pod_row("test", pod(waiting="CrashLoopBackOff", restarts=4, ready=False, last="Error"))
    assert crashing["reason"] == "CrashLoopBackOff" and crashing["restarts"] == 5 and crashing["ready"] is False
    assert runtime.pod_row("t", pod(waiting="ImagePullBackOff", ready=False))["reason"] == "ImagePullBackOff"
    assert runtime.pod_row("t", pod(ready=False, last="OOMKilled"))["reason"] == "OOMKilled"


def test_event_rows_and_newest_first():
    old = {"involvedObject": {"kind": "Pod", "name": "p"}, "type": "Warning", "reason": "BackOff", "message": "m",
           "count": 3, "lastTimestamp": "2030-01-01T00:00:00Z"}
    new = {"involvedObject": {"kind": "ReplicaSet", "name": "r"}, "reason": "SuccessfulCreate",
           "series": {"count": 2, "lastObservedTime": "2030-01-02T00:00:00Z"}, "eventTime": "2030-01-01T12:00:00Z"}
    rows = runtime.newest_first([runtime.event_row("test", old), runtime.event_row("test", new)])
    assert [(r["object"], r["type"], r["count"]) for r in rows] == [("ReplicaSet/r", "Normal", 2),
                                                                     ("Pod/p", "Warning", 3)]


@pytest.mark.parametrize("args,field", [({"tail": 0}, "tail"), ({"tail": 10001}, "tail"), ({"tail": "1e3"}, "tail"),
                                        ({"since_seconds": "0"}, "since_seconds"), ({"follow": "2"}, "follow")])
def test_bad_log_parameters_name_the_field(args, field):
    with pytest.raises(Invalid) as raised:
        logs.params(**args)
    assert raised.value.details["field"] == field


def test_good_log_parameters():
    assert logs.params("10000", "1", "1") == {"tail": 10000, "since_seconds": 1, "follow": True}
    assert logs.params() == {"tail": None, "since_seconds": None, "follow": False}


class Upstream:
    """A urllib3 response stand-in: chunks (a number is a pause of that many seconds)."""

    def __init__(self, chunks, fail=False):
        self.chunks, self.fail, self.closed, self.released = chunks, fail, False, False

    def stream(self, amt, decode_content=True):
        for chunk in self.chunks:
            if isinstance(chunk, (int, float)):
                eventlet.sleep(chunk)
                continue
            yield chunk
        if self.fail:
            raise urllib3.exceptions.ReadTimeoutError(None, "/log", "idle")

    def close(self):
        self.closed = True

    def release_conn(self):
        self.released = True


def test_lines_are_prefixed_even_when_cut_across_chunks():
    up = Upstream([b"one\ntw", b"o\nthr", b"ee"])
    assert b"".join(logstream.relay([("p1", up)], follow=False)) == b"p1 one\np1 two\np1 three\n"
    assert up.released and not up.closed


def test_a_follow_merges_pods_line_by_line_and_a_stall_ends_only_that_pod():
    a, b = Upstream([b"a1\n", 0.05, b"a2\n"]), Upstream([b"b1\n", 0.01, b"b2\n"], fail=True)
    out = b"".join(logstream.relay([("a", a), ("b", b)], follow=True, notes=[b"c [MAE] gone\n"])).splitlines()
    assert out[0] == b"c [MAE] gone" and sorted(out[1:]) == [b"a a1", b"a a2", b"b b1", b"b b2"]
    assert out.index(b"b b2") < out.index(b"a a2")          # as they came, not pod by pod
    assert b.closed and a.released


def test_a_reader_leaving_closes_every_upstream():
    a, b = Upstream([b"a1\n", 30, b"never\n"]), Upstream([b"b1\n", 30])
    stream = logstream.relay([("a", a), ("b", b)], follow=True)
    assert next(stream)
    stream.close()      # what the web server does when the client has gone
    eventlet.sleep(0)
    assert a.closed and b.closed


def test_a_warning_event_is_one_log_line_in_plain_words_with_a_stable_id():
    report = {"events": [{"type": "Warning", "reason": "FailedCreate", "object": "ReplicaSet/web-v1-abc",
                          "message": 'Error creating: pods "x" is forbidden: violates PodSecurity "baseline:latest": '
                                     'privileged (container "web" must not set securityContext.privileged=true)'},
                         {"type": "Normal", "reason": "SuccessfulCreate", "object": "ReplicaSet/web-v1-abc"}]}
    [(line_id, line)] = warning_lines(7, "test", report)
    assert line.startswith("Warning from the cluster about ReplicaSet/web-v1-abc: FailedCreate: Error creating: "
                           'pods "x" is forbidden: violates PodSecurity')
    assert "Pod Security level (baseline:latest) forbids these pods" in line
    assert warning_lines(7, "test", report)[0][0] == line_id != warning_lines(8, "test", report)[0][0]
    assert len(line_id) <= 80


def test_a_follow_ends_after_the_longest_time_allowed_and_lets_go():
    a = Upstream([b"a1\n", 30, b"never\n"])
    started = eventlet.hubs.get_hub().clock()
    assert b"".join(logstream.relay([("a", a)], follow=True, max_seconds=0.2)) == b"a a1\n"
    assert 0.15 < eventlet.hubs.get_hub().clock() - started < 5 and a.closed
