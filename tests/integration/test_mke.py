"""The MKE library against a sandbox cluster (its own process, HTTPS, token, CA) and against
the real control plane with the deployer token k8s/operator/mke-rbac.yaml grants — the
same tests, so what the deployer may not do fails here, not in a user's cluster."""
import time
import uuid

import pytest

from sandbox.testing import start_sandbox
from services.cluster.mke import ClusterClient, ClusterError, apply, delete


class Recorder:
    """The seed's callback interface, remembering what it was told."""

    def __init__(self):
        self.lines, self.done_with, self.deleted_with = [], None, None

    def log(self, level, line):
        self.lines.append((level, line))

    def done(self, result):
        self.done_with = result

    def delete(self, result):
        self.deleted_with = result


class Kube:
    """Where MKE talks to: URL, CA and the token MAE would be registered with, and an
    admin client to check what happened."""

    def __init__(self, url, ca_pem, token, admin_client):
        self.url, self.ca_pem, self.token, self.admin_client = url, ca_pem, token, admin_client


@pytest.fixture(scope="module", params=["sandbox", "real"])
def sandbox(request, tmp_path_factory):
    if request.param == "real":
        real, access = request.getfixturevalue("real_kube"), request.getfixturevalue("real_kube_mae")
        yield Kube(real.url, real.ca_pem, access.deployer_token, real.api_client)
        return
    with start_sandbox("mke", tmp_path_factory.mktemp("mke"), ready_delay=0.2, backoff=0.3) as sb:
        yield Kube(sb.url, sb.ca_pem, sb.token, sb.api_client)


@pytest.fixture(scope="module")
def client(sandbox):
    c = ClusterClient("mke", sandbox.url, sandbox.ca_pem, sandbox.token, attempts=3, backoff=0.05)
    # marked as MAE's app namespace, as namespaces.enact makes it: the deployer's admission
    # policy (k8s/operator/mke-rbac.yaml) refuses an unmarked one and every write in it
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "shop", "labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": "shop"}}}
    apply(c, [ns], Recorder())
    yield c
    c.close()


def manifests(image="nginx:1.25", name=None):
    name = name or "web-" + uuid.uuid4().hex[:6]
    labels = {"app.kubernetes.io/managed-by": "mae", "mae.io/app": "shop"}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": name, "namespace": "shop", "labels": labels, "annotations": {"mae.io/record-id": "1"}},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {**labels, "app": name}},
                               "spec": {"containers": [{"name": "web", "image": image,
                                                        "ports": [{"containerPort": 80}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "shop", "labels": labels},
         "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "shop", "labels": labels},
         "data": {"greeting": "hello"}},
    ]


def ops(result):
    return {o["kind"]: o["operation"] for o in result["objects"]}


def test_create_then_identical_reapply_changes_nothing(client, sandbox):
    ms = manifests()
    first = Recorder()
    result = apply(client, ms, first, "shop")
    assert result["ok"] and ops(result) == {"ConfigMap": "created", "Service": "created", "Deployment": "created"}
    assert [o["kind"] for o in result["objects"]] == ["ConfigMap", "Service", "Deployment"]  # contract order
    assert first.done_with is result and any("created Deployment shop/" in line for _, line in first.lines)
    dep = next(o for o in result["objects"] if o["kind"] == "Deployment")
    assert dep["uid"] and dep["generation"] == 1 and dep["resource_version"]

    again = apply(client, ms, Recorder(), "shop")
    assert ops(again) == {"ConfigMap": "unchanged", "Service": "unchanged", "Deployment": "unchanged"}
    # the cluster confirms: no write happened, the generation did not move
    from kubernetes import client as k8s
    live = k8s.AppsV1Api(sandbox.admin_client()).read_namespaced_deployment(ms[0]["metadata"]["name"], "shop")
    assert live.metadata.generation == 1  # (status writes by the controllers still move resourceVersion)


def test_changed_image_updates_only_the_deployment(client):
    ms = manifests()
    apply(client, ms, Recorder(), "shop")
    ms[0]["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    rec = Recorder()
    result = apply(client, ms, rec, "shop")
    assert ops(result) == {"ConfigMap": "unchanged", "Service": "unchanged", "Deployment": "updated"}
    assert next(o for o in result["objects"] if o["kind"] == "Deployment")["generation"] == 2
    assert any("updated Deployment" in line and "spec.template" in line for _, line in rec.lines)


def test_delete_then_delete_again_is_absent(client):
    ms = manifests()
    apply(client, ms, Recorder(), "shop")
    rec = Recorder()
    result = delete(client, ms, rec, "shop")
    assert result["ok"] and set(ops(result).values()) == {"deleted"}
    assert rec.deleted_with is result and rec.done_with is None
    assert set(ops(delete(client, ms, Recorder(), "shop")).values()) == {"absent"}


def test_invalid_object_is_refused_with_the_clusters_reason(client):
    ms = manifests()
    ms[0]["spec"]["selector"] = {"matchLabels": {"app": "other"}}  # does not match the template
    rec = Recorder()
    result = apply(client, ms, rec, "shop")
    assert not result["ok"] and result["error"]["code"] == 422 and result["error"]["reason"] == "Invalid"
    assert ops(result) == {"ConfigMap": "created", "Service": "created"}  # stopped at the failure
    assert rec.lines[-1][0] == "error"


def test_a_changed_selector_is_refused_as_immutable_with_the_servers_message(client, sandbox):
    ms = manifests()
    assert apply(client, ms, Recorder(), "shop")["ok"]
    name = ms[0]["metadata"]["name"]
    labels = {"app": name, "track": "new"}
    ms[0]["spec"]["selector"] = {"matchLabels": labels}
    ms[0]["spec"]["template"]["metadata"]["labels"].update(labels)
    result = apply(client, ms, Recorder(), "shop")
    assert not result["ok"] and result["error"]["code"] == 422 and result["error"]["reason"] == "Invalid"
    assert "spec.selector" in result["error"]["message"] and "field is immutable" in result["error"]["message"]
    from kubernetes import client as k8s
    live = k8s.AppsV1Api(sandbox.admin_client()).read_namespaced_deployment(name, "shop")
    assert live.spec.selector.match_labels == {"app": name}  # unchanged


def test_an_object_mae_did_not_create_is_neither_replaced_nor_deleted(client, sandbox):
    from kubernetes import client as k8s
    core = k8s.CoreV1Api(sandbox.admin_client())
    ms = manifests()
    name = ms[2]["metadata"]["name"]
    core.create_namespaced_config_map("shop", {"metadata": {"name": name}, "data": {"owner": "someone else"}})
    rec = Recorder()
    result = apply(client, ms, rec, "shop")
    assert not result["ok"] and result["error"]["reason"] == "NotManaged" and result["error"]["code"] == 409
    assert "was not created by MAE" in result["error"]["message"] and rec.lines[-1][0] == "error"
    gone = delete(client, ms[2:], Recorder(), "shop")
    assert not gone["ok"] and gone["error"]["reason"] == "NotManaged"
    assert core.read_namespaced_config_map(name, "shop").data == {"owner": "someone else"}


def test_object_outside_the_namespace_is_forbidden_without_asking(client):
    ms = manifests()
    ms[1]["metadata"]["namespace"] = "kube-system"
    result = apply(client, ms[1:2], Recorder(), "shop")
    assert not result["ok"] and result["error"]["reason"] == "Forbidden"


def test_bad_token_is_unauthorized_and_not_retried(sandbox):
    bad = ClusterClient("mke", sandbox.url, sandbox.ca_pem, "not-the-token", attempts=3, backoff=0.05)
    with pytest.raises(ClusterError) as err:
        bad.check()
    assert err.value.reason == "Unauthorized" and err.value.code == 401
    assert bad.calls == 1


def test_wrong_ca_fails_the_tls_handshake(sandbox, tmp_path):
    with start_sandbox("other", tmp_path / "other", no_persist=True) as other:
        wrong = ClusterClient("mke", sandbox.url, other.ca_pem, sandbox.token, attempts=1)
        with pytest.raises(ClusterError) as err:
            wrong.check()
    assert err.value.reason == "TLSError" and "certificate" in err.value.message.lower()


def test_unreachable_cluster_is_retried_a_bounded_number_of_times_then_a_visible_error():
    from tests.conftest import free_port

    ca = open(__file__).read()  # never used: nothing listens
    c = ClusterClient("gone", f"https://127.0.0.1:{free_port()}", "", "t", attempts=3, backoff=0.05,
                      connect_timeout=1)
    rec = Recorder()
    started = time.monotonic()
    result = apply(c, manifests(), rec, "shop")
    assert time.monotonic() - started < 10
    assert c.calls == 3  # one object, three attempts, then the error
    assert not result["ok"] and result["error"]["reason"] == "Unreachable" and result["objects"] == []
    assert rec.done_with is result and rec.lines[-1][0] == "error"
    del ca


def test_an_unchanged_apply_reads_each_object_once(client):
    """The record-id fence reads the Deployment; the apply uses that read instead of a second GET
    (one request per object is what an idle re-deploy of many apps costs each cluster)."""
    ms = manifests()
    ms[0]["metadata"]["annotations"]["mae.io/record-id"] = "3"
    assert apply(client, ms, Recorder(), "shop")["ok"]
    before = client.calls
    result = apply(client, ms, Recorder(), "shop")
    assert result["ok"] and [o["operation"] for o in result["objects"]] == ["unchanged"] * len(ms)
    assert client.calls - before == len(ms)


def test_a_delayed_older_apply_never_overwrites_what_a_newer_record_applied(client, sandbox):
    """Applies are fenced by record id: record 5's request, arriving late (a redelivery after an
    outage), leaves record 9's Deployment, ConfigMap and Service as they are."""
    newer = manifests(image="nginx:1.27")
    name = newer[0]["metadata"]["name"]
    newer[0]["metadata"]["annotations"]["mae.io/record-id"] = "9"
    assert apply(client, newer, Recorder(), "shop")["ok"]
    older = manifests(image="nginx:1.25", name=name)
    older[0]["metadata"]["annotations"]["mae.io/record-id"] = "5"
    older[2]["data"] = {"greeting": "stale"}
    told = Recorder()
    result = apply(client, older, told, "shop")
    assert not result["ok"] and result["objects"] == []
    assert result["error"]["reason"] == "Superseded" and "record 9" in result["error"]["message"]
    assert told.done_with is result and any(level == "warning" and "Nothing applied" in line for level, line in told.lines)
    from kubernetes import client as k8s
    live = k8s.AppsV1Api(sandbox.admin_client()).read_namespaced_deployment(name, "shop")
    assert live.spec.template.spec.containers[0].image == "nginx:1.27"
    assert live.metadata.annotations["mae.io/record-id"] == "9"
    config = k8s.CoreV1Api(sandbox.admin_client()).read_namespaced_config_map(name, "shop")
    assert config.data == {"greeting": "hello"}
    # A newer record (a rollback is one) applies over it as always.
    rollback = manifests(image="nginx:1.25", name=name)
    rollback[0]["metadata"]["annotations"]["mae.io/record-id"] = "12"
    assert apply(client, rollback, Recorder(), "shop")["ok"]
    assert k8s.AppsV1Api(sandbox.admin_client()).read_namespaced_deployment(
        name, "shop").spec.template.spec.containers[0].image == "nginx:1.25"
