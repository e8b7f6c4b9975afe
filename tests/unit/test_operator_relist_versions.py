"""After an API server restart the three kinds are listed again one after another; a report
must never carry a newer version than the parts it was built from (the fault suite found a
record stuck in progressing: the Pod list's version was stamped on a stale cached Deployment,
and the fresh Deployment, listed next at the same version, looked like a duplicate)."""
from mae_operator.state import State


def dep(rv, unavailable):
    return {"metadata": {"name": "web-v1", "namespace": "shop", "uid": "d1", "generation": 5,
                         "resourceVersion": str(rv), "annotations": {"mae.io/record-id": "45"}},
            "spec": {"replicas": 1},
            "status": {"observedGeneration": 5, "updatedReplicas": 1, "readyReplicas": 1 - unavailable,
                       "availableReplicas": 1 - unavailable, "unavailableReplicas": unavailable}}


def pod(rv):
    return {"metadata": {"name": "web-v1-abc-1", "namespace": "shop", "resourceVersion": str(rv),
                         "labels": {"pod-template-hash": "abc"},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "web-v1-abc"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"restartCount": 0, "state": {"running": {}}}]}}


def test_a_relist_of_pods_does_not_lend_its_version_to_a_stale_deployment():
    state = State()
    state.relisted("Deployment", [dep(810, unavailable=1)], 810)
    state.take()
    # The API server restarts; the Pod list comes first, at the cluster's current version 827.
    state.relisted("Pod", [pod(819)], 827)
    [stale] = state.take()
    # ... then the Deployment list, with the Deployment as it is now (rv 827, all available).
    state.relisted("Deployment", [dep(827, unavailable=0)], 827)
    [fresh] = state.take()
    assert int(fresh["resource_version"]) > int(stale["resource_version"]), (stale["resource_version"],
                                                                               fresh["resource_version"])
    assert fresh["replicas"]["unavailable"] == 0


def test_a_deployment_gone_during_the_outage_is_reported_deleted_at_the_lists_version():
    state = State()
    state.relisted("Deployment", [dep(810, unavailable=0)], 810)
    state.take()
    state.relisted("Deployment", [], 900)
    [gone] = state.take()
    assert gone["deleted"] and gone["resource_version"] == "900"
