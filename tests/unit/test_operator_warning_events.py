"""The operator forwards Warning events of MAE's objects with their Deployment's report: only
Warnings, only about objects it watches, each distinct one once (a repeat the cluster counts
is not news and sends nothing), and a new one makes a report that sorts after the last."""
from mae_operator.state import State
from shared import reportorder


def dep(rv=100):
    return {"metadata": {"name": "web-v1", "namespace": "shop", "uid": "d1", "generation": 1,
                         "resourceVersion": str(rv), "annotations": {"mae.io/record-id": "7"}},
            "spec": {"replicas": 1}, "status": {"observedGeneration": 1}}


def rs(rv=101):
    return {"metadata": {"name": "web-v1-abc", "namespace": "shop", "resourceVersion": str(rv),
                         "ownerReferences": [{"kind": "Deployment", "name": "web-v1"}]}}


def event(rv, kind="ReplicaSet", name="web-v1-abc", type_="Warning", reason="FailedCreate", count=1,
          message='Error creating: pods "web-v1-abc-x" is forbidden: violates PodSecurity "baseline:latest"'):
    return {"metadata": {"name": f"{name}.{rv}", "namespace": "shop", "resourceVersion": str(rv)},
            "involvedObject": {"kind": kind, "name": name, "namespace": "shop"}, "type": type_,
            "reason": reason, "message": message, "count": count}


def watched():
    state = State()
    state.relisted("Deployment", [dep()], 100)
    state.relisted("ReplicaSet", [rs()], 101)
    [first] = state.take()
    return state, first


def test_a_warning_about_a_replicaset_goes_out_with_its_deployments_report():
    state, first = watched()
    assert first["events"] == []
    state.event("Event", "ADDED", event(120))
    [report] = state.take()
    assert report["events"] == [{"type": "Warning", "reason": "FailedCreate", "object": "ReplicaSet/web-v1-abc",
                                 "message": event(0)["message"]}]
    assert reportorder.key(report) > reportorder.key(first) and report["resource_version"] == "120"


def test_repeats_normal_events_and_foreign_objects_send_nothing():
    state, _ = watched()
    state.event("Event", "ADDED", event(120))
    state.take()
    state.event("Event", "MODIFIED", event(130, count=5))           # the cluster counting a repeat
    state.event("Event", "ADDED", event(131, type_="Normal", reason="SuccessfulCreate"))
    state.event("Event", "ADDED", event(132, kind="Pod", name="someone-elses"))
    state.event("Event", "ADDED", event(133, kind="Node", name="node-1"))
    state.event("Event", "DELETED", event(120))                     # expired: still said once
    assert state.take() == []


def test_a_warning_that_comes_before_its_object_is_sent_when_the_object_is():
    state = State()
    state.relisted("Deployment", [dep()], 100)
    state.take()
    state.relisted("Event", [event(105)], 105)
    assert state.take() == []      # not yet known as one of MAE's objects
    state.event("ReplicaSet", "ADDED", rs(106))
    [report] = state.take()
    assert [e["reason"] for e in report["events"]] == ["FailedCreate"]


def test_a_report_keeps_the_last_five_and_cuts_long_messages():
    state, _ = watched()
    for i in range(8):
        state.event("Event", "ADDED", event(200 + i, reason=f"R{i}", message="x" * 2000))
    [report] = state.take()
    assert [e["reason"] for e in report["events"]] == [f"R{i}" for i in range(3, 8)]
    assert all(len(e["message"]) == 500 for e in report["events"])
