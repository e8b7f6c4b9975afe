"""kubectl's protobuf request bodies, managedFields and server-side apply.

kubectl's generator commands (``kubectl create deployment|configmap|secret|service|...``)
send ``application/vnd.kubernetes.protobuf``; ``kubectl apply --server-side`` and apply
patches from the Python client go through structured-merge-diff's field ownership.  Every
test runs against the sandbox and the real control plane (tests/sandbox/conftest.py).
"""
from __future__ import annotations

import base64
import json

import pytest
import yaml
from kubernetes import client

from sandbox_helpers import IMAGE_A, IMAGE_B

PROTOBUF = "application/vnd.kubernetes.protobuf"
APPLY = "application/apply-patch+yaml"


def managed(obj) -> dict:
    """{(manager, operation, subresource): fieldsV1} of an object read with the Python client."""
    return {(e.manager, e.operation, e.subresource): e.fields_v1 for e in obj.metadata.managed_fields or []}


def raw_request(cluster, method: str, path: str, body, content_type: str, query: list | None = None):
    """(status, parsed body) of one request: bytes are sent as they are, a dict as JSON."""
    api = cluster.api
    method, url, headers, body, _ = api.param_serialize(
        method, path, query_params=query or [], header_params={"Content-Type": content_type,
                                                               "Accept": "application/json"},
        body=body, auth_settings=["BearerToken"])
    resp = api.call_api(method, url, headers, body)
    return resp.status, json.loads(resp.read())


def app_manifest(ns: str, image: str = IMAGE_A, labels: dict | None = None, env: bool = True,
                 replicas: int | None = 2) -> str:
    container = {"name": "api", "image": image, "ports": [{"containerPort": 80}]}
    if env:
        container["env"] = [{"name": "MODE", "value": "prod"}]
    spec = {"selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": "api", "namespace": ns, "labels": labels or {"app": "api"}},
                           "spec": spec})


# ---------------------------------------------------------------- protobuf bodies

def test_kubectl_generator_commands_send_protobuf(kubectl, ns, core, apps):
    out = kubectl("-n", ns, "create", "deployment", "web", f"--image={IMAGE_A}", "--replicas=3", "--port=8080",
                  "-v=8")
    assert f"Content-Type: {PROTOBUF}" in out.stderr  # really the protobuf path
    assert "deployment.apps/web created" in out.stdout
    kubectl("-n", ns, "create", "configmap", "cfg", "--from-literal=a=1", "--from-literal=b=two words")
    kubectl("-n", ns, "create", "secret", "generic", "pw", "--from-literal=password=hunter2")
    kubectl("-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080", "--tcp=443:https")
    kubectl("-n", ns, "create", "job", "once", f"--image={IMAGE_A}", "--", "sleep", "1")
    kubectl("-n", ns, "create", "quota", "q", "--hard=cpu=2,memory=1Gi,pods=10")
    kubectl("-n", ns, "create", "poddisruptionbudget", "pdb", "--selector=app=web", "--min-available=50%")
    kubectl("-n", ns, "create", "role", "reader", "--verb=get,list", "--resource=pods")
    kubectl("-n", ns, "create", "serviceaccount", "robot")

    d = apps.read_namespaced_deployment("web", ns)
    assert d.spec.replicas == 3 and d.spec.selector.match_labels == {"app": "web"}
    c = d.spec.template.spec.containers[0]
    assert (c.name, c.image, c.ports[0].container_port, c.ports[0].protocol) == ("pause", IMAGE_A, 8080, "TCP")
    assert d.spec.template.metadata.labels == {"app": "web"} and d.metadata.labels == {"app": "web"}
    assert core.read_namespaced_config_map("cfg", ns).data == {"a": "1", "b": "two words"}
    assert base64.b64decode(core.read_namespaced_secret("pw", ns).data["password"]) == b"hunter2"
    svc = core.read_namespaced_service("web", ns)
    assert [(p.port, p.target_port, p.protocol) for p in svc.spec.ports] == [(80, 8080, "TCP"), (443, "https", "TCP")]
    assert svc.spec.type == "ClusterIP" and svc.spec.selector == {"app": "web"}
    job = client.BatchV1Api(apps.api_client).read_namespaced_job("once", ns)
    assert job.spec.template.spec.containers[0].command == ["sleep", "1"]
    assert job.spec.template.spec.restart_policy == "Never"
    quota = core.read_namespaced_resource_quota("q", ns)
    assert quota.spec.hard == {"cpu": "2", "memory": "1Gi", "pods": "10"}
    pdb = client.PolicyV1Api(apps.api_client).read_namespaced_pod_disruption_budget("pdb", ns)
    assert pdb.spec.min_available == "50%" and pdb.spec.selector.match_labels == {"app": "web"}
    role = client.RbacAuthorizationV1Api(apps.api_client).read_namespaced_role("reader", ns)
    assert [(r.verbs, r.resources, r.api_groups) for r in role.rules] == [(["get", "list"], ["pods"], [""])]
    assert core.read_namespaced_service_account("robot", ns).metadata.name == "robot"


def test_kubectl_create_namespace_over_protobuf(kubectl, core):
    name = "pb-ns-" + base64.b32encode(__import__("os").urandom(5)).decode().lower()[:8]
    try:
        out = kubectl("create", "namespace", name, "-v=8")
        assert f"Content-Type: {PROTOBUF}" in out.stderr and f"namespace/{name} created" in out.stdout
        assert core.read_namespace(name).status.phase == "Active"
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.mark.parametrize("body", [b"not protobuf at all", b"k8s\x00\x0a\xff\xff", b"k8s\x00\x12\x03abc\x08"])
def test_garbled_protobuf_is_a_bad_request(cluster, ns, body):
    status, st = raw_request(cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps", body, PROTOBUF)
    assert status == 400 and st["kind"] == "Status" and st["reason"] == "BadRequest" and st["message"]


# ---------------------------------------------------------------- managedFields of updates

def test_kubectl_create_records_its_fields(kubectl, ns, apps):
    kubectl("-n", ns, "create", "deployment", "web", f"--image={IMAGE_A}")
    d = apps.read_namespaced_deployment("web", ns)
    entries = managed(d)
    # The create's own entry; a real cluster's controller may already have added its status entry
    # ("kube-controller-manager", "Update", "status"), the sandbox's controllers add none.
    assert set(entries) - {("kube-controller-manager", "Update", "status")} == {("kubectl-create", "Update", None)}
    fields = entries[("kubectl-create", "Update", None)]
    assert [e.api_version for e in d.metadata.managed_fields if e.manager == "kubectl-create"] == ["apps/v1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    spec = fields["f:spec"]
    assert {"f:replicas", "f:selector", "f:strategy", "f:template", "f:progressDeadlineSeconds"} <= set(spec)
    assert spec["f:strategy"]["f:rollingUpdate"] == {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}
    container = spec["f:template"]["f:spec"]["f:containers"]['k:{"name":"pause"}']
    assert {".", "f:image", "f:name", "f:imagePullPolicy", "f:resources"} <= set(container)
    assert "f:status" not in fields and "f:name" not in fields["f:metadata"]


def test_updates_move_ownership(kubectl, ns, apps):
    kubectl("-n", ns, "create", "deployment", "web", f"--image={IMAGE_A}")
    kubectl("-n", ns, "label", "deployment", "web", "team=a")
    # the Python client's default manager is its User-Agent's product ("OpenAPI-Generator")
    apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "pause", "image": IMAGE_B}]}}}})
    d = apps.read_namespaced_deployment("web", ns)
    m = managed(d)
    assert m[("kubectl-label", "Update", None)] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    ours = m[("OpenAPI-Generator", "Update", None)]
    assert ours == {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"pause"}': {"f:image": {}}}}}}}
    create = m[("kubectl-create", "Update", None)]
    assert "f:image" not in create["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"pause"}']



def test_no_op_put_keeps_version_and_reset(kubectl, ns, core):
    kubectl("-n", ns, "create", "configmap", "cfg", "--from-literal=a=1")
    cm = core.read_namespaced_config_map("cfg", ns)
    assert managed(cm) == {("kubectl-create", "Update", None): {"f:data": {".": {}, "f:a": {}}}}
    # a PUT of what was read changes nothing: same resourceVersion, same managedFields
    again = core.replace_namespaced_config_map("cfg", ns, cm)
    assert again.metadata.resource_version == cm.metadata.resource_version
    assert managed(again) == managed(cm)
    cm.data["b"] = "2"
    changed = core.replace_namespaced_config_map("cfg", ns, cm)
    assert managed(changed) == {("kubectl-create", "Update", None): {"f:data": {".": {}, "f:a": {}}},
                                ("OpenAPI-Generator", "Update", None): {"f:data": {"f:b": {}}}}
    # managedFields: [{}] resets them (the documented way to strip them)
    reset = core.patch_namespaced_config_map("cfg", ns, {"metadata": {"managedFields": [{}]}})
    assert not reset.metadata.managed_fields


# ---------------------------------------------------------------- server-side apply

def test_kubectl_server_side_apply_creates_updates_and_prunes(kubectl, ns, apps, tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(app_manifest(ns, labels={"app": "api", "tier": "backend"}))
    assert "deployment.apps/api serverside-applied" in kubectl("apply", "--server-side", "-f", str(path)).stdout
    d = apps.read_namespaced_deployment("api", ns)
    assert d.spec.replicas == 2 and d.metadata.labels == {"app": "api", "tier": "backend"}
    m = managed(d)
    assert [k for k in m if k[0] == "kubectl"] == [("kubectl", "Apply", None)]  # (a real cluster's
    fields = m[("kubectl", "Apply", None)]  # controllers add kube-controller-manager entries)
    assert fields["f:metadata"] == {"f:labels": {"f:app": {}, "f:tier": {}}}
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"api"}']
    assert container["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert container["f:env"] == {'k:{"name":"MODE"}': {".": {}, "f:name": {}, "f:value": {}}}
    assert "f:strategy" not in fields["f:spec"]  # defaulted fields belong to nobody
    assert d.spec.strategy.type == "RollingUpdate"

    # someone else's label survives; the applier's own removed label and env var go
    kubectl("-n", ns, "label", "deployment", "api", "owner=ops")
    path.write_text(app_manifest(ns, image=IMAGE_B, env=False))
    kubectl("apply", "--server-side", "-f", str(path))
    d = apps.read_namespaced_deployment("api", ns)
    assert d.metadata.labels == {"app": "api", "owner": "ops"}
    c = d.spec.template.spec.containers[0]
    assert c.image == IMAGE_B and c.env is None and c.ports[0].container_port == 80
    assert d.metadata.generation == 2


def test_apply_conflicts_and_force(kubectl, ns, apps, tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(app_manifest(ns))
    kubectl("apply", "--server-side", "-f", str(path))
    kubectl("-n", ns, "scale", "deployment", "api", "--replicas=4")  # manager "kubectl", subresource scale

    failed = kubectl("apply", "--server-side", "-f", str(path), check=False)
    assert failed.returncode != 0
    assert ('Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: '
            '.spec.replicas') in failed.stderr
    assert apps.read_namespaced_deployment("api", ns).spec.replicas == 4

    # a second applier changing the image conflicts with the first one (an Apply: no "using")
    other = yaml.safe_load(app_manifest(ns, image=IMAGE_B, env=False, replicas=None))
    with pytest.raises(client.ApiException) as exc:
        apps.patch_namespaced_deployment("api", ns, other, field_manager="deployer", _content_type=APPLY)
    assert exc.value.status == 409
    st = json.loads(exc.value.body)
    assert st["reason"] == "Conflict"
    assert st["message"] == ('Apply failed with 1 conflict: conflict with "kubectl": '
                             '.spec.template.spec.containers[name="api"].image')
    assert st["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "kubectl"',
                                        "field": '.spec.template.spec.containers[name="api"].image'}]

    # force takes the field over; the value moves and so does the ownership
    d = apps.patch_namespaced_deployment("api", ns, other, field_manager="deployer", force=True, _content_type=APPLY)
    assert d.spec.template.spec.containers[0].image == IMAGE_B
    m = managed(d)
    mine = m[("deployer", "Apply", None)]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"api"}']
    assert "f:image" in mine
    theirs = m[("kubectl", "Apply", None)]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"api"}']
    assert "f:image" not in theirs and "f:name" in theirs  # both still own the item and its name

    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    d = apps.read_namespaced_deployment("api", ns)
    assert d.spec.replicas == 2 and d.spec.template.spec.containers[0].image == IMAGE_A
    assert ("kubectl", "Update", "scale") not in managed(d)  # it owned nothing any more


def test_apply_patch_creates_and_validates(cluster, ns, core):
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    _, status, _ = core.patch_namespaced_config_map_with_http_info("settings", ns, cm, field_manager="tool",
                                                                   _content_type=APPLY)
    assert status == 201
    cm["data"] = {"b": "2"}
    obj, status, _ = core.patch_namespaced_config_map_with_http_info("settings", ns, cm, field_manager="tool",
                                                                     _content_type=APPLY)
    assert status == 200 and obj.data == {"b": "2"}  # "a" was only ours: applying without it removes it
    assert managed(obj) == {("tool", "Apply", None): {"f:data": {"f:b": {}}}}

    status, st = raw_request(cluster, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/settings",
                             cm, APPLY)
    assert status == 422 and st["reason"] == "Invalid"
    assert st["message"] == 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    status, st = raw_request(cluster, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/settings",
                             {"data": {"c": "3"}}, "application/merge-patch+json", [("force", "true")])
    assert status == 422 and "force: Forbidden: may not be specified for non-apply patch" in st["message"]
    bad = dict(cm, metadata={"name": "settings", "managedFields": [{"manager": "x"}]})
    status, st = raw_request(cluster, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/settings",
                             bad, APPLY, [("fieldManager", "tool")])
    assert status == 400 and st["message"] == "metadata.managedFields must be nil"
    status, st = raw_request(cluster, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/settings",
                             dict(cm, bogus=1), APPLY, [("fieldManager", "tool")])
    # 1.36 answers this refusal with a 500 (its own wording, namespace/name from the body)
    assert status == 500 and st["message"] == ("failed to create typed patch object (/settings; /v1, Kind=ConfigMap): "
                                               ".bogus: field not declared in schema")


def test_moving_from_client_side_to_server_side_apply(kubectl, ns, apps, tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text(app_manifest(ns))
    assert "deployment.apps/api created" in kubectl("apply", "-f", str(path)).stdout
    assert ("kubectl-client-side-apply", "Update", None) in managed(apps.read_namespaced_deployment("api", ns))

    # same manifest with other values: no conflict with kubectl's own client-side apply
    path.write_text(app_manifest(ns, image=IMAGE_B, replicas=3))
    assert "serverside-applied" in kubectl("apply", "--server-side", "-f", str(path)).stdout
    d = apps.read_namespaced_deployment("api", ns)
    assert d.spec.replicas == 3 and d.spec.template.spec.containers[0].image == IMAGE_B
    assert ("kubectl", "Apply", None) in managed(d)
    last = json.loads(d.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 3 and last["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE_B

    # and back: a client-side apply of the first manifest still works from the updated annotation
    path.write_text(app_manifest(ns))
    kubectl("apply", "-f", str(path))
    d = apps.read_namespaced_deployment("api", ns)
    assert d.spec.replicas == 2 and d.spec.template.spec.containers[0].image == IMAGE_A
