"""MAE's workload policy against a real API server's Pod Security Admission.

Every case of the policy table's baseline rules (tests/unit/test_workload_policy.py) is
sent as a Pod, by server-side dry run, into a namespace labelled the way MAE labels its
namespaces (``enforce: baseline``): the real admission refuses each one too, and accepts
the same pod without the offending field. So MAE's refusal at save time never forbids
what the cluster would run, for these rules, and the cluster holds the line where a
template slipped past MAE. Two cases (hostProcess, an unmasked /proc) never reach admission:
the API server's validation refuses them first, which the test accepts and checks by name."""
from __future__ import annotations

import uuid

import pytest
from kubernetes import client

from services.cluster.domain.namespaces import pod_security_labels
from tests.unit.test_workload_policy import BASE, BASELINE, CASES


VALIDATED_FIRST = {"host_process": "hostProcess", "proc_mount": "Unmasked"}


@pytest.fixture(scope="module")
def baseline_ns(real_kube):
    api = client.CoreV1Api(real_kube.api_client())
    name = "psa-" + uuid.uuid4().hex[:8]
    api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=pod_security_labels())))
    yield api, name
    api.delete_namespace(name)


def as_pod(deployment: dict) -> dict:
    template = deployment["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p-" + uuid.uuid4().hex[:6], **{k: v for k, v in template["metadata"].items()
                                                               if k == "annotations"}},
            "spec": template["spec"]}


def test_the_plain_pod_is_admitted(baseline_ns):
    api, ns = baseline_ns
    api.create_namespaced_pod(ns, as_pod(BASE), dry_run="All")


@pytest.mark.parametrize("rule,index", [(rule, i) for rule in sorted(BASELINE) for i in range(len(CASES[rule]))])
def test_each_baseline_case_is_refused_by_the_real_pod_security_admission(baseline_ns, rule, index):
    api, ns = baseline_ns
    obj, _ = CASES[rule][index]
    with pytest.raises(client.ApiException) as refused:
        api.create_namespaced_pod(ns, as_pod(obj), dry_run="All")
    import json
    message = json.loads(refused.value.body)["message"]
    if refused.value.status == 422:
        # Linux pods cannot even be valid with these fields (hostProcess needs hostNetwork,
        # an unmasked /proc needs a user namespace): API validation refuses them first.
        assert rule in VALIDATED_FIRST and VALIDATED_FIRST[rule] in message, message
        return
    assert refused.value.status == 403, refused.value.body
    assert 'violates PodSecurity "baseline:latest"' in message
