"""Pure-function tests of the simulated pod logs (``sandbox/podlogs.py``) and of the
events.k8s.io/v1 view of Events (``sandbox/eventsv1.py``), with an injected clock."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import eventsv1, podlogs
from sandbox.registry import ApiError

T0 = 1_700_000_000.0  # the run's start, a fixed instant
T0_NS = int(T0 * 1e9)


def run(end: float | None = None, crash: bool = False) -> podlogs.Run:
    return podlogs.Run("c", "example.com/app:1", "node-1", "containerd://x", T0_NS,
                       None if end is None else int(end * 1e9), crash)


def read(now: float, interval: float = 0.5, end=None, crash=False, **query) -> list[str]:
    opts = podlogs.parse_options({k: str(v) for k, v in query.items()}, "p")
    return podlogs.LogReader(run(end, crash), opts, interval, now=now).read().decode().splitlines()


def test_lines_are_a_function_of_the_run_and_the_clock():
    lines = read(T0 + 2.2)
    assert lines == ["2023-11-14T22:13:20.000Z sandbox: container c (example.com/app:1) started on node-1",
                     "2023-11-14T22:13:20.500Z GET / 200 seq=1", "2023-11-14T22:13:21.000Z GET / 200 seq=2",
                     "2023-11-14T22:13:21.500Z GET / 200 seq=3", "2023-11-14T22:13:22.000Z GET / 200 seq=4"]
    assert read(T0 + 2.2) == lines and read(T0 + 9, end=T0 + 2.2) == lines  # a stopped run writes no more


@settings(max_examples=60, deadline=None)
@given(elapsed=st.floats(0, 50), tail=st.integers(0, 30), since=st.integers(1, 60))
def test_tail_and_since_cut_one_history(elapsed, tail, since):
    now = T0 + elapsed
    everything = read(now)
    assert read(now, tailLines=tail) == (everything[-tail:] if tail else [])
    newer = read(now, sinceSeconds=since)
    assert newer == everything[len(everything) - len(newer):]  # a suffix of the same history
    assert all(line[:23] >= podlogs.stamp(int((now - since) * 1e9), 3)[:23] for line in newer)


def test_timestamps_limit_bytes_and_crash_runs():
    stamped = read(T0 + 1, timestamps="true", tailLines=1)
    assert stamped == ["2023-11-14T22:13:21.000000000Z 2023-11-14T22:13:21.000Z GET / 200 seq=2"]
    opts = podlogs.parse_options({"limitBytes": "30"}, "p")
    reader = podlogs.LogReader(run(), opts, 0.5, now=T0 + 5)
    assert len(reader.read()) == 30 and reader.exhausted and reader.advance(now=T0 + 9) == b""
    assert read(T0 + 9, crash=True, end=T0 + 0.2) == [
        "2023-11-14T22:13:20.000Z sandbox: container c (example.com/app:1) started on node-1",
        "2023-11-14T22:13:20.200Z sandbox: fatal error, exiting with status 1"]


def test_follow_advances_with_the_clock_and_ends_with_the_run():
    reader = podlogs.LogReader(run(), podlogs.parse_options({"follow": "true", "tailLines": "0"}, "p"), 1.0,
                               now=T0 + 3.5)
    assert reader.read() == b"" and reader.next_due() == T0 + 4
    assert reader.advance(now=T0 + 5.1).decode().splitlines() == [
        "2023-11-14T22:13:24.000Z GET / 200 seq=4", "2023-11-14T22:13:25.000Z GET / 200 seq=5"]
    assert reader.advance(now=T0 + 9, ended_ns=int((T0 + 6.5) * 1e9)).decode().count("\n") == 1  # seq 6
    assert reader.next_due() is None


@pytest.mark.parametrize("query, code, message", [
    ({"tailLines": "-1"}, 422, 'PodLogOptions "p" is invalid: tailLines: Invalid value: -1: must be greater than or '
                               'equal to 0'),
    ({"sinceSeconds": "1", "sinceTime": "2024-01-01T00:00:00Z"}, 422,
     'PodLogOptions "p" is invalid: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified'),
    ({"tailLines": "x"}, 400, 'strconv.ParseInt: parsing "x": invalid syntax'),
    ({"follow": "maybe"}, 400, 'strconv.ParseBool: parsing "maybe": invalid syntax'),
])
def test_bad_options_are_refused_like_the_api_server(query, code, message):
    with pytest.raises(podlogs.LogOptionsError) as err:
        podlogs.parse_options(query, "p")
    assert (err.value.code, err.value.message) == (code, message)


def test_the_run_a_request_reads_is_the_kubelets_choice():
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i:crash"}]},
           "status": {"containerStatuses": [{"name": "c", "restartCount": 1,
                                             "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                             "lastState": {"terminated": {"exitCode": 1, "containerID": "cid",
                                                                          "startedAt": "2024-01-01T00:00:00Z",
                                                                          "finishedAt": "2024-01-01T00:00:01Z"}}}]}}
    last = podlogs.select_run(pod, "c")
    assert (last.container_id, last.crash, last.end_ns - last.start_ns) == ("cid", True, 1_000_000_000)
    assert podlogs.select_run(pod, "c", previous=True).container_id == "cid"
    pod["status"]["containerStatuses"][0].update(restartCount=0, lastState={},
                                                 state={"waiting": {"reason": "ImagePullBackOff"}})
    with pytest.raises(podlogs.LogUnavailable, match='container "c" in pod "p" is waiting to start: trying and '
                                                     'failing to pull image'):
        podlogs.select_run(pod, "c")


def test_events_v1_is_a_renaming_of_core_events():
    core = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "n"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "reason": "R", "type": "Normal",
            "source": {"component": "kubelet"}, "count": 2, "firstTimestamp": "2024-01-01T00:00:00Z",
            "lastTimestamp": "2024-01-01T00:00:01Z", "eventTime": None, "reportingComponent": "kubelet",
            "reportingInstance": ""}
    v1 = eventsv1.to_v1(core)
    assert v1 == {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": core["metadata"], "eventTime": None,
                  "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reason": "R", "type": "Normal",
                  "deprecatedSource": {"component": "kubelet"}, "deprecatedCount": 2,
                  "deprecatedFirstTimestamp": "2024-01-01T00:00:00Z",
                  "deprecatedLastTimestamp": "2024-01-01T00:00:01Z", "reportingController": "kubelet"}
    back = eventsv1.from_v1(v1)
    assert {k: v for k, v in back.items() if v not in (None, "")} == \
        {k: v for k, v in core.items() if v not in (None, "")}
    assert eventsv1.field_selector("regarding.name=p,reportingController!=x") == \
        "involvedObject.name=p,reportingComponent!=x"
    with pytest.raises(ApiError, match="field label not supported: source"):
        eventsv1.field_selector("source=kubelet")
