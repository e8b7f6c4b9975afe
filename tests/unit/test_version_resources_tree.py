"""A version's resources on a cluster as a tree (services/cluster/domain/resources.py): pods
under the ReplicaSet that owns them, ReplicaSets newest revision first with the Deployment's
revision marked current, the Deployment's counts and conditions, and a cluster that could
not be read said plainly. The objects are shaped as the API server (and the sandbox) gives them."""
from datetime import timedelta

from services.cluster.domain import resources
from shared.clock import SystemClock
from shared.names import object_name

# Creation times as the API server writes them; the tree passes them through unchanged.
START = SystemClock().now().replace(microsecond=0)


def stamp(days=0, seconds=0) -> str:
    return (START + timedelta(days=days, seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

DEPLOY_UID, OTHER_DEPLOY_UID = "d-1", "d-0"


def deployment(revision="2", generation=3, observed=2):
    return {"metadata": {"name": "web-v1", "uid": DEPLOY_UID, "generation": generation,
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": observed, "updatedReplicas": 1, "readyReplicas": 2,
                       "availableReplicas": 2,
                       "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                                       "message": "Deployment has minimum availability.", "lastUpdateTime": "x"},
                                      {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                                       "message": 'ReplicaSet "web-v1-b" is progressing.'}]}}


def replicaset(name, uid, revision, desired, ready, owner=DEPLOY_UID):
    return {"metadata": {"name": name, "uid": uid, "creationTimestamp": stamp(days=int(revision)),
                         "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                         "ownerReferences": [{"kind": "Deployment", "name": "web-v1", "uid": owner}]},
            "spec": {"replicas": desired}, "status": {"replicas": desired, "readyReplicas": ready,
                                                      "availableReplicas": ready}}


def pod(name, owner_uid, ready=True, waiting=None, node="node-1", restarts=0):
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {"metadata": {"name": name, "creationTimestamp": stamp(days=2, seconds=1),
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "x", "uid": owner_uid}]},
            "spec": {"nodeName": node, "containers": [{"name": "web"}]},
            "status": {"phase": "Running" if not waiting else "Pending",
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                       "containerStatuses": [{"restartCount": restarts, "state": state, "ready": ready}]}}


def test_pods_hang_under_their_replicaset_newest_revision_first_and_current_marked():
    old, new = replicaset("web-v1-a", "rs-a", 1, 1, 1), replicaset("web-v1-b", "rs-b", 2, 2, 1)
    pods = [pod("web-v1-b-2", "rs-b", ready=False, waiting="ImagePullBackOff", node=None, restarts=3),
            pod("web-v1-a-1", "rs-a"), pod("web-v1-b-1", "rs-b"), pod("stray", "rs-elsewhere")]
    tree = resources.item({"name": "test", "env": "test"}, deployment(), [old, new], pods)
    assert tree["cluster"] == "test" and tree["env"] == "test" and tree["reachable"] is True
    assert tree["deployment"] == {
        "name": "web-v1", "generation": 3, "observed_generation": 2,
        "replicas": {"desired": 2, "updated": 1, "ready": 2, "available": 2},
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                        "message": "Deployment has minimum availability."},
                       {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
                        "message": 'ReplicaSet "web-v1-b" is progressing.'}]}
    assert [(r["name"], r["revision"], r["current"]) for r in tree["replicasets"]] == [
        ("web-v1-b", 2, True), ("web-v1-a", 1, False)]
    current = tree["replicasets"][0]
    assert current["replicas"] == {"desired": 2, "ready": 1, "available": 1}
    assert current["created_at"] == stamp(days=2)
    assert current["pods"] == [
        {"name": "web-v1-b-1", "phase": "Running", "ready": True, "restarts": 0, "node": "node-1",
         "created_at": stamp(days=2, seconds=1)},
        {"name": "web-v1-b-2", "phase": "Pending", "ready": False, "restarts": 3, "reason": "ImagePullBackOff",
         "created_at": stamp(days=2, seconds=1)}]
    assert [p["name"] for p in tree["replicasets"][1]["pods"]] == ["web-v1-a-1"]


def test_replicasets_of_an_earlier_deployment_of_that_name_are_not_its_history():
    mine, leftover = replicaset("web-v1-b", "rs-b", 1, 2, 2), replicaset("web-v1-z", "rs-z", 4, 0, 0, OTHER_DEPLOY_UID)
    tree = resources.item({"name": "test", "env": "test"}, deployment(revision="1"), [leftover, mine], [])
    assert [(r["name"], r["current"]) for r in tree["replicasets"]] == [("web-v1-b", True)]


def test_without_a_deployment_the_newest_replicaset_is_current():
    tree = resources.item({"name": "prod", "env": "prod"}, None,
                          [replicaset("web-v1-a", "rs-a", 1, 0, 0), replicaset("web-v1-b", "rs-b", 2, 1, 0)], [])
    assert tree["deployment"] is None
    assert [(r["name"], r["current"]) for r in tree["replicasets"]] == [("web-v1-b", True), ("web-v1-a", False)]
    assert resources.item({"name": "prod", "env": "prod"}, None, [], [])["replicasets"] == []


def test_a_cluster_that_cannot_be_read_says_why_and_has_no_tree():
    down = resources.unreachable({"name": "edge", "env": "prod"}, "Timeout: " + "x" * 900)
    assert down["reachable"] is False and down["deployment"] is None and down["replicasets"] == []
    assert down["error"].startswith("Timeout: ") and len(down["error"]) == 500


def test_the_deployment_is_read_by_the_name_the_deploy_service_renders():
    from services.deploy.domain import names

    assert names.object_name is object_name
    assert object_name("web", "v1") == "web-v1"
    long = object_name("s" * 40, "v" * 40)
    assert len(long) == 63 and long.startswith("s" * 40) and long != object_name("s" * 40, "v" * 39 + "w")
