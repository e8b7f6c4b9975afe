"""Previews: the diff between what a deploy would apply and what the cluster runs."""
from services.deploy.domain import diff

DESIRED = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web-v1", "namespace": "shop", "labels": {"mae.io/app": "shop"}},
           "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}


def live(image="nginx:1", replicas=2):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web-v1", "namespace": "shop", "uid": "u", "resourceVersion": "99", "generation": 4,
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"mae.io/app": "shop", "extra": "x"},
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": 600, "strategy": {"type": "RollingUpdate"},
                     "template": {"spec": {"containers": [{"name": "web", "image": image,
                                                            "terminationMessagePath": "/dev/termination-log"}],
                                           "dnsPolicy": "ClusterFirst"}}},
            "status": {"replicas": 2, "readyReplicas": 2}}


def test_a_new_object_is_a_create_with_every_field():
    d = diff.diff_object(DESIRED, None)
    assert d["change"] == "create"
    assert {"path": "spec", "op": "added", "before": None, "after": DESIRED["spec"]} in d["changes"]
    assert d["unified"].startswith("--- live/Deployment/web-v1\n+++ new/Deployment/web-v1\n")


def test_server_defaults_status_and_metadata_are_not_noise():
    same = diff.diff_object({**DESIRED, "spec": {**DESIRED["spec"], "template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1"}]}}}}, live())
    assert same["change"] == "unchanged" and same["changes"] == [] and same["unified"] == ""


def test_a_changed_image_and_replicas_show_as_paths_and_a_unified_diff():
    d = diff.diff_object({**DESIRED, "spec": {**DESIRED["spec"], "replicas": 3}}, live())
    assert d["change"] == "update"
    assert d["changes"] == [
        {"path": "spec.replicas", "op": "changed", "before": 2, "after": 3},
        {"path": "spec.template.spec.containers[0].image", "op": "changed", "before": "nginx:1", "after": "nginx:2"},
    ]
    assert "-      - image: nginx:1\n" in d["unified"] and "+      - image: nginx:2\n" in d["unified"]
    assert "terminationMessagePath" not in d["unified"] and "resourceVersion" not in d["unified"]


def test_added_and_removed_list_items():
    desired = {**DESIRED, "spec": {**DESIRED["spec"], "template": {"spec": {"containers": [
        {"name": "web", "image": "nginx:1"}, {"name": "sidecar", "image": "envoy:1"}]}}}}
    d = diff.diff_object(desired, live())
    assert [c["op"] for c in d["changes"]] == ["added"]
    assert d["changes"][0]["path"] == "spec.template.spec.containers[1]"
    shrink = diff.changes({"a": [1, 2]}, {"a": [1]})
    assert shrink == [{"path": "a[1]", "op": "removed", "before": 2, "after": None}]
