"""The operator's compact reports and its change detection (pure)."""
from mae_operator import reports
from mae_operator.state import State


def dep(rv="10", ready=1):
    return {"metadata": {"name": "web-v1", "namespace": "shop", "uid": "d1", "generation": 2,
                         "resourceVersion": rv, "labels": {"app.kubernetes.io/managed-by": "mae"},
                         "annotations": {"mae.io/record-id": "42", "mae.io/last-applied": "{...}"}},
            "spec": {"replicas": 2, "progressDeadlineSeconds": 30},
            "status": {"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": ready,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                       "message": "m", "lastUpdateTime": "t"}]}}


def rs():
    return {"metadata": {"name": "web-v1-abc", "namespace": "shop", "resourceVersion": "11",
                         "ownerReferences": [{"kind": "Deployment", "name": "web-v1"}]}}


def pod(name, rv, reason=None):
    state = {"waiting": {"reason": reason, "message": "Back-off pulling image"}} if reason else {"running": {}}
    return {"metadata": {"name": name, "namespace": "shop", "resourceVersion": rv,
                         "labels": {"pod-template-hash": "abc"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "web-v1-abc"}]},
            "status": {"phase": "Pending" if reason else "Running",
                       "conditions": [{"type": "Ready", "status": "False" if reason else "True"}],
                       "containerStatuses": [{"restartCount": 3, "state": state}]}}


def test_report_has_the_contract_fields_and_explains_failures_first():
    report = reports.deployment_report(dep(), [pod("web-v1-abc-1", "12"), pod("web-v1-abc-2", "13", "ImagePullBackOff")],
                                       13, "2026-01-01T00:00:00Z")
    assert set(report) >= {"namespace", "kind", "name", "uid", "generation", "observed_generation",
                           "resource_version", "deleted", "labels", "annotations", "replicas", "conditions",
                           "progress_deadline_seconds", "pods", "events", "observed_at"}
    assert report["resource_version"] == "13" and report["annotations"] == {"mae.io/record-id": "42"}
    assert report["pods"][0]["waiting_reason"] == "ImagePullBackOff"
    assert report["conditions"][0] == {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                       "message": "m"}


def test_digest_ignores_observation_time_and_version_but_not_content():
    a = reports.deployment_report(dep(), [], 10, "t1")
    b = reports.deployment_report(dep(rv="11"), [], 11, "t2")
    c = reports.deployment_report(dep(ready=2), [], 12, "t3")
    assert reports.digest(a) == reports.digest(b) != reports.digest(c)


def test_state_maps_pods_to_their_deployment_and_versions_only_grow():
    state = State()
    state.relisted("Deployment", [dep()], 20)
    state.event("ReplicaSet", "ADDED", rs())
    state.event("Pod", "ADDED", pod("web-v1-abc-1", "21"))
    [report] = state.take()
    assert report["resource_version"] == "21" and [p["name"] for p in report["pods"]] == ["web-v1-abc-1"]
    assert state.take() == []  # nothing changed since
    deleted = pod("web-v1-abc-1", "25")
    state.event("Pod", "DELETED", deleted)
    [report] = state.take()
    assert report["resource_version"] == "25" and report["pods"] == []
    state.event("Deployment", "DELETED", dep(rv="30"))
    [report] = state.take()
    assert report["deleted"] is True and report["resource_version"] == "30"
