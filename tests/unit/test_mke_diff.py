"""MKE's diff: what counts as "the live object already has what we want"."""
import copy

from services.cluster.mke import diff
from services.cluster.mke.kinds import KINDS, ordered

DEPLOYMENT = KINDS["Deployment"]


def desired():
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web-v1", "namespace": "shop",
                         "labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": "shop"},
                         "annotations": {"mae.io/record-id": "42"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1",
                                                           "env": [{"name": "A", "value": "1"}]}]}}}}


def live_of(manifest):
    """What an API server returns: ours plus defaults, status and bookkeeping."""
    live = diff.with_last_applied(manifest, DEPLOYMENT)
    live = copy.deepcopy(live)
    live["metadata"].update(uid="u1", resourceVersion="10", generation=1, creationTimestamp="2026-01-01T00:00:00Z")
    live["metadata"]["labels"]["added-by-someone"] = "x"
    spec = live["spec"]
    spec.update(strategy={"type": "RollingUpdate"}, revisionHistoryLimit=10, progressDeadlineSeconds=600)
    container = spec["template"]["spec"]["containers"][0]
    container.update(terminationMessagePath="/dev/termination-log", imagePullPolicy="IfNotPresent")
    spec["template"]["spec"]["restartPolicy"] = "Always"
    live["status"] = {"observedGeneration": 1, "replicas": 2}
    return live


def test_identical_reapply_over_server_defaults_is_no_difference():
    assert diff.differences(desired(), live_of(desired()), DEPLOYMENT) == []


def test_changed_image_is_a_difference_inside_the_spec():
    want = desired()
    want["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    changed = diff.differences(want, live_of(desired()), DEPLOYMENT)
    assert changed and changed[0].startswith("spec.template")


def test_changed_annotation_and_label_are_differences():
    want = desired()
    want["metadata"]["annotations"]["mae.io/record-id"] = "43"
    assert diff.differences(want, live_of(desired()), DEPLOYMENT) == ["annotations.mae.io/record-id"]
    want = desired()
    want["metadata"]["labels"]["mae.io/version"] = "v2"
    assert diff.differences(want, live_of(desired()), DEPLOYMENT)


def test_a_removed_list_item_is_a_difference():
    want = desired()
    want["spec"]["template"]["spec"]["containers"][0]["env"] = []
    assert diff.differences(want, live_of(desired()), DEPLOYMENT)


def test_a_label_we_set_before_and_dropped_now_is_a_difference_but_foreign_labels_are_not():
    before = desired()
    before["metadata"]["labels"]["tier"] = "web"
    live = live_of(before)
    assert diff.differences(desired(), live, DEPLOYMENT) == ["labels.tier"]
    body = diff.updated(live, desired(), DEPLOYMENT)
    assert "tier" not in body["metadata"]["labels"]
    assert body["metadata"]["labels"]["added-by-someone"] == "x"  # not ours: kept


def test_drift_made_by_hand_on_the_cluster_is_a_difference():
    live = live_of(desired())
    live["spec"]["replicas"] = 5
    assert diff.differences(desired(), live, DEPLOYMENT) == ["spec.replicas"]


def test_update_body_keeps_resource_version_and_server_fields_and_records_last_applied():
    want = desired()
    want["spec"]["replicas"] = 3
    live = live_of(desired())
    body = diff.updated(live, want, DEPLOYMENT)
    assert body["metadata"]["resourceVersion"] == "10"
    assert body["spec"]["replicas"] == 3 and body["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert "status" not in body
    assert diff.last_applied_of(body)["spec"]["replicas"] == 3
    # and once applied, the same manifest is no longer a difference
    assert diff.differences(want, body, DEPLOYMENT) == []


def test_contains_semantics():
    assert diff.contains({"a": 1}, {"a": 1, "b": 2})
    assert not diff.contains({"a": 1}, {"a": 2})
    assert not diff.contains([1, 2], [1, 2, 3])
    assert diff.contains({}, None) and diff.contains([], None)
    assert not diff.contains(True, 1)  # a bool is not a number here
    assert not diff.contains("x", diff.MISSING)


def test_secret_string_data_compares_as_the_base64_data_the_server_stores():
    kind = KINDS["Secret"]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "shop"},
              "stringData": {"password": "hunter2"}}
    live = diff.with_last_applied(secret, kind)
    assert "stringData" not in live and live["data"] == {"password": "aHVudGVyMg=="}
    assert diff.differences(secret, live, kind) == []


def test_apply_order_puts_configs_before_deployments_before_ingresses():
    kinds = [m["kind"] for m in ordered([{"kind": "Ingress"}, {"kind": "Deployment"}, {"kind": "Service"},
                                         {"kind": "ConfigMap"}, {"kind": "HorizontalPodAutoscaler"}])]
    assert kinds == ["ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler", "Ingress"]
