"""A good rollout that follows a failing one is judged by its own pods (the fault suite found
good images reported as "cannot be pulled": the previous ReplicaSet's pod was still in
ImagePullBackOff while it was scaled down)."""
from mae_operator import reports
from mae_operator.state import State
from services.deploy.domain import status

REVISION = "deployment.kubernetes.io/revision"


def dep(revision="2", generation=2, observed=2, ready=0, updated=1):
    return {"metadata": {"name": "web-v1", "namespace": "shop", "uid": "d1", "generation": generation,
                         "resourceVersion": "30", "labels": {"app.kubernetes.io/managed-by": "mae"},
                         "annotations": {"mae.io/record-id": "8", REVISION: revision}},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 600},
            "status": {"observedGeneration": observed, "updatedReplicas": updated, "readyReplicas": ready,
                       "availableReplicas": ready}}


def rs(name, revision):
    return {"metadata": {"name": name, "namespace": "shop", "resourceVersion": "31",
                         "annotations": {REVISION: revision},
                         "ownerReferences": [{"kind": "Deployment", "name": "web-v1"}]}}


def pod(name, rs_name, reason=None):
    state = {"waiting": {"reason": reason, "message": "Back-off pulling image"}} if reason else {"waiting": {
        "reason": "ContainerCreating"}}
    return {"metadata": {"name": name, "namespace": "shop", "resourceVersion": "32",
                         "ownerReferences": [{"kind": "ReplicaSet", "name": rs_name}]},
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                       "containerStatuses": [{"restartCount": 0, "state": state}]}}


def report_of(deployment):
    state = State()
    state.relisted("Deployment", [deployment], 30)
    state.relisted("ReplicaSet", [rs("web-v1-old", "1"), rs("web-v1-new", "2")], 31)
    state.relisted("Pod", [pod("web-v1-old-a", "web-v1-old", "ImagePullBackOff"),
                           pod("web-v1-new-a", "web-v1-new")], 32)
    [report] = state.take()
    return report


def test_the_operator_marks_pods_of_earlier_revisions_old():
    pods = {p["name"]: p for p in report_of(dep())["pods"]}
    assert pods["web-v1-old-a"].get("old") is True and "old" not in pods["web-v1-new-a"]


def test_a_pod_of_the_previous_failing_rollout_does_not_fail_this_one():
    judged, reason, _ = status.judge(report_of(dep()), applied_generation=2, image="nginx:1.9")
    assert judged == status.PROGRESSING, reason


def test_nor_does_any_pod_before_the_controller_saw_the_new_template():
    report = report_of(dep(generation=3, observed=2))
    for p in report["pods"]:
        p.pop("old", None)  # whatever the pods say, they are of the previous template
    assert status.judge(report, applied_generation=3, image="nginx:1.9")[0] == status.PROGRESSING


def test_a_pod_of_the_current_rollout_that_cannot_pull_still_fails_it():
    report = report_of(dep())
    report["pods"] = [{"name": "web-v1-new-a", "phase": "Pending", "ready": False, "restart_count": 0,
                       "waiting_reason": "ImagePullBackOff", "message": "Back-off pulling image"}]
    judged, reason, _ = status.judge(report, applied_generation=2, image="nginx:missing")
    assert judged == status.FAILED and reason.startswith("The image nginx:missing cannot be pulled")
