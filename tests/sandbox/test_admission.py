"""Pods the cluster refuses: Pod Security, ResourceQuota and LimitRange on pod creation,
and what the controllers make of a refusal (a ``FailedCreate`` event, a ``ReplicaFailure``
condition on the ReplicaSet copied to the Deployment, gone once pods can be created).

Written against the behaviour of the real API server and controllers, and run against
both the sandbox and the real control plane."""
from __future__ import annotations

import json

import pytest
from kubernetes import client

from sandbox_helpers import deployment, wait_for

RESTRICTED_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                 "runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}


def refusal(exc: client.ApiException) -> str:
    return json.loads(exc.body)["message"]


def replica_failure(apps, ns, name):
    d = apps.read_namespaced_deployment(name, ns)
    return next((c for c in d.status.conditions or [] if c.type == "ReplicaFailure"), None)


def label_namespace(core, ns, labels):
    core.patch_namespace(ns, {"metadata": {"labels": labels}})


def test_pod_security_restricted_refuses_pods_until_the_template_complies(apps, core, ns):
    label_namespace(core, ns, {"pod-security.kubernetes.io/enforce": "restricted"})
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1))
    cond = wait_for(lambda: replica_failure(apps, ns, "web"), what="ReplicaFailure on the Deployment")
    assert (cond.status, cond.reason) == ("True", "FailedCreate")
    assert 'violates PodSecurity "restricted:latest"' in cond.message
    for rule in ("allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true",
                 "seccompProfile"):
        assert rule in cond.message, cond.message
    assert core.list_namespaced_pod(ns, label_selector="app=web").items == []
    events = core.list_namespaced_event(ns, field_selector="reason=FailedCreate").items
    assert events and events[0].type == "Warning" and events[0].message.startswith("Error creating: pods ")
    assert events[0].involved_object.kind == "ReplicaSet"

    # a template that meets the level: pods are created and the condition goes away
    fixed = deployment("web", replicas=1)["spec"]["template"]
    fixed["spec"]["containers"][0]["securityContext"] = RESTRICTED_SC
    apps.patch_namespaced_deployment("web", ns, {"spec": {"template": fixed}})
    wait_for(lambda: replica_failure(apps, ns, "web") is None, what="ReplicaFailure cleared")
    wait_for(lambda: core.list_namespaced_pod(ns, label_selector="app=web").items, what="a pod")


def test_baseline_refuses_privileged_and_host_path_but_not_a_plain_pod(core, ns):
    label_namespace(core, ns, {"pod-security.kubernetes.io/enforce": "baseline"})
    plain = {"metadata": {"name": "plain"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}
    core.create_namespaced_pod(ns, plain)
    bad = {"metadata": {"name": "bad"},
           "spec": {"containers": [{"name": "c", "image": "nginx:1.27", "securityContext": {"privileged": True},
                                    "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
                    "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}
    with pytest.raises(client.ApiException) as caught:  # a privileged hostPath pod at baseline
        core.create_namespaced_pod(ns, bad)
    assert caught.value.status == 403
    assert 'violates PodSecurity "baseline:latest"' in refusal(caught.value)
    assert "privileged" in refusal(caught.value) and "hostPath volumes" in refusal(caught.value)


def test_resource_quota_admits_up_to_its_limit_then_the_deployment_says_why(apps, core, ns):
    core.create_namespaced_resource_quota(ns, {"metadata": {"name": "compute"}, "spec": {"hard": {"pods": "1"}}})
    apps.create_namespaced_deployment(ns, deployment("two", replicas=2))
    cond = wait_for(lambda: replica_failure(apps, ns, "two"), what="ReplicaFailure")
    assert cond.reason == "FailedCreate" and "exceeded quota: compute" in cond.message
    assert "limited: pods=1" in cond.message
    assert len(core.list_namespaced_pod(ns, label_selector="app=two").items) == 1
    # more room: the controller retries and the condition clears
    core.patch_namespaced_resource_quota("compute", ns, {"spec": {"hard": {"pods": "3"}}})
    wait_for(lambda: replica_failure(apps, ns, "two") is None, timeout=40, what="ReplicaFailure cleared")
    assert len(core.list_namespaced_pod(ns, label_selector="app=two").items) == 2


def test_limit_range_maximum_refuses_a_bigger_container(core, ns):
    core.create_namespaced_limit_range(ns, {"metadata": {"name": "small"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "500m"}, "default": {"cpu": "200m"}}]}})
    big = {"metadata": {"name": "big"}, "spec": {"containers": [
        {"name": "c", "image": "nginx:1.27", "resources": {"limits": {"cpu": "2"}}}]}}
    with pytest.raises(client.ApiException) as caught:  # a container over the LimitRange maximum
        core.create_namespaced_pod(ns, big)
    assert caught.value.status == 403
    assert "maximum cpu usage per Container is 500m, but limit is 2" in refusal(caught.value)
    small = core.create_namespaced_pod(ns, {"metadata": {"name": "small"}, "spec": {"containers": [
        {"name": "c", "image": "nginx:1.27"}]}})
    assert small.spec.containers[0].resources.limits == {"cpu": "200m"}
