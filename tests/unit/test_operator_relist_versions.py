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
    from shared import reportorder

    assert reportorder.key(fresh) > reportorder.key(stale), (stale["versions"], fresh["versions"])
    assert fresh["replicas"]["unavailable"] == 0


def test_a_deployment_gone_during_the_outage_is_reported_deleted_at_the_lists_version():
    state = State()
    state.relisted("Deployment", [dep(810, unavailable=0)], 810)
    state.take()
    state.relisted("Deployment", [], 900)
    [gone] = state.take()
    assert gone["deleted"] and gone["resource_version"] == "900"


def test_a_deployment_event_that_arrives_after_a_newer_pod_event_still_makes_a_later_report():
    """The watch streams are not ordered with each other: the old pod's deletion (909) can
    arrive before the Deployment's final status (908). Both reports then carry
    resource_version 909; the per-stream versions put the fresh one after the stale one
    (the fault suite saw a record stay progressing on a finished rollout)."""
    from shared import reportorder

    state = State()
    state.event("Deployment", "MODIFIED", dep(905, unavailable=1))
    state.event("Pod", "MODIFIED", pod(906))
    state.take()
    state.event("Pod", "DELETED", {**pod(909), "metadata": {**pod(909)["metadata"], "name": "web-v1-old-1"}})
    [stale] = state.take()
    state.event("Deployment", "MODIFIED", dep(908, unavailable=0))
    [fresh] = state.take()
    assert stale["resource_version"] == fresh["resource_version"] == "909"
    assert stale["replicas"]["unavailable"] == 1 and fresh["replicas"]["unavailable"] == 0
    assert reportorder.key(fresh) > reportorder.key(stale)
    assert fresh["versions"] == {"deployment": 908, "replicasets": 0, "pods": 909}


def test_every_later_view_of_a_deployment_sorts_after_every_earlier_one():
    """Whatever order the three streams interleave in, each report the operator sends for a
    Deployment sorts after the ones before it (what MAE's "is this newer" relies on)."""
    import random

    from shared import reportorder

    for seed in range(200):
        rng = random.Random(seed)
        streams = {"Deployment": [], "Pod": []}
        for rv in range(100, 140):
            kind = rng.choice(list(streams))
            streams[kind].append(rv)
        state, keys = State(), []
        queues = {kind: list(rvs) for kind, rvs in streams.items()}
        while any(queues.values()):
            kind = rng.choice([k for k, q in queues.items() if q])
            rv = queues[kind].pop(0)  # each stream in its own order
            obj = dep(rv, unavailable=rv % 2) if kind == "Deployment" else pod(rv)
            state.event(kind, "MODIFIED", obj)
            if rng.random() < 0.5:
                keys += [reportorder.key(r) for r in state.take()]
        keys += [reportorder.key(r) for r in state.take()]
        assert keys == sorted(keys) and len(set(keys)) == len(keys), seed


def test_a_restarted_operator_reports_after_everything_its_predecessor_sent():
    """The old operator's last report was stamped with an old pod's deletion (909) and built
    from a Deployment its watch had not caught up with; it died before the fresh one. The
    new operator lists everything at 909: its report must sort after the stale one, or the
    record stays progressing on a finished rollout."""
    from shared import reportorder

    old = State()
    old.event("Deployment", "MODIFIED", dep(905, unavailable=1))
    old.event("Pod", "DELETED", {**pod(909), "metadata": {**pod(909)["metadata"], "name": "web-v1-old-1"}})
    [stale] = old.take()
    new = State()
    new.relisted("Deployment", [dep(908, unavailable=0)], 909)
    new.relisted("ReplicaSet", [], 909)
    new.relisted("Pod", [pod(906)], 909)
    [fresh] = new.take()
    assert fresh["replicas"]["unavailable"] == 0
    assert reportorder.key(fresh) > reportorder.key(stale), (stale["versions"], fresh["versions"])
