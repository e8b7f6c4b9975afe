"""The sandbox driven by kubectl - a client nobody on this project wrote.

Every test here also runs against a real cluster (MAE_TEST_KUBECONFIG).
"""
from __future__ import annotations

import json

import yaml

from sandbox_helpers import IMAGE_A, IMAGE_B, IMAGE_MISSING, deployment, wait_for


def manifest(ns: str, image: str, replicas: int = 2) -> str:
    dep = deployment("web", image=image, replicas=replicas)
    dep["metadata"]["namespace"] = ns
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080, "name": "http"}]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    return yaml.safe_dump_all([dep, svc])


def get_json(kubectl, *args):
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_apply_rollout_status_and_rollover(kubectl, ns, tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(manifest(ns, IMAGE_A))
    out = kubectl("apply", "-f", str(path)).stdout
    assert "deployment.apps/web created" in out and "service/web created" in out

    status = kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in status.stdout

    svc = get_json(kubectl, "-n", ns, "service", "web")
    assert svc["spec"]["clusterIP"] and svc["spec"]["ports"][0]["targetPort"] == "http"

    # Re-apply unchanged: client-side apply computes an empty patch.
    assert "deployment.apps/web unchanged" in kubectl("apply", "-f", str(path)).stdout

    path.write_text(manifest(ns, IMAGE_B))
    assert "deployment.apps/web configured" in kubectl("apply", "-f", str(path)).stdout
    status = kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert 'deployment "web" successfully rolled out' in status.stdout

    rs = get_json(kubectl, "-n", ns, "replicasets", "-l", "app=web")["items"]
    assert len(rs) == 2
    by_image = {r["spec"]["template"]["spec"]["containers"][0]["image"]: r for r in rs}
    new, old = by_image[IMAGE_B], by_image[IMAGE_A]
    assert new["spec"]["replicas"] == 2 and new["status"]["readyReplicas"] == 2
    assert old["spec"]["replicas"] == 0
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    h = new["metadata"]["labels"]["pod-template-hash"]
    assert new["metadata"]["name"] == f"web-{h}"
    assert new["spec"]["selector"]["matchLabels"]["pod-template-hash"] == h
    owner = new["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Deployment", "web", True)

    pods = wait_for(lambda: [p for p in get_json(kubectl, "-n", ns, "pods", "-l", "app=web")["items"]
                             if not p["metadata"].get("deletionTimestamp")] if len(
        [p for p in get_json(kubectl, "-n", ns, "pods", "-l", "app=web")["items"]
         if not p["metadata"].get("deletionTimestamp")]) == 2 else None, what="2 pods")
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {h}
    assert all(p["spec"]["containers"][0]["image"] == IMAGE_B for p in pods)

    table = kubectl("-n", ns, "get", "deployment", "web").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table[1].split()[:4] == ["web", "2/2", "2", "2"]

    described = kubectl("-n", ns, "describe", "deployment", "web").stdout
    assert "NewReplicaSet:" in described and f"web-{h}" in described
    assert "ScalingReplicaSet" in described


def test_rollout_status_times_out_on_missing_image(kubectl, ns, tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text(manifest(ns, IMAGE_MISSING, replicas=1))
    kubectl("apply", "-f", str(path))
    res = kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=3s", check=False)
    assert res.returncode != 0
    assert "timed out" in (res.stderr + res.stdout)

    def backoff_shown():
        out = kubectl("-n", ns, "get", "pods").stdout
        return out if "ImagePullBackOff" in out else None

    out = wait_for(backoff_shown, timeout=30, interval=0.2, what="ImagePullBackOff in kubectl get pods")
    row = [line for line in out.splitlines() if line.startswith("web-")][0].split()
    assert row[1] == "0/1"
    events = kubectl("-n", ns, "get", "events", "--field-selector", "reason=Failed").stdout
    assert "ErrImagePull" in events or "ImagePullBackOff" in events


def test_delete_namespace_cleans_up(kubectl, ns, tmp_path, apps, core):
    path = tmp_path / "app.yaml"
    path.write_text(manifest(ns, IMAGE_A))
    kubectl("apply", "-f", str(path))
    kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert core.list_namespaced_pod(ns).items

    out = kubectl("delete", "namespace", ns, timeout=120).stdout  # waits until it is gone
    assert f'namespace "{ns}" deleted' in out
    assert ns not in kubectl("get", "namespaces", "-o", "name").stdout
    assert not apps.list_namespaced_deployment(ns).items
    assert not apps.list_namespaced_replica_set(ns).items
    assert not core.list_namespaced_pod(ns).items
    assert not core.list_namespaced_service(ns).items


def test_kubectl_scale_and_delete_deployment(kubectl, ns, tmp_path, apps, core):
    path = tmp_path / "app.yaml"
    path.write_text(manifest(ns, IMAGE_A, replicas=1))
    kubectl("apply", "-f", str(path))
    kubectl("-n", ns, "scale", "deployment/web", "--replicas=3")
    kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s")
    assert apps.read_namespaced_deployment(name="web", namespace=ns).status.available_replicas == 3

    kubectl("-n", ns, "delete", "deployment", "web")
    wait_for(lambda: not apps.list_namespaced_replica_set(ns).items, what="replicasets garbage-collected")
    wait_for(lambda: not core.list_namespaced_pod(ns).items, what="pods garbage-collected")
