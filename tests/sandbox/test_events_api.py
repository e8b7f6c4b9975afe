"""Events as kubectl and the clients read them: core/v1 with the ``involvedObject.*`` field
selectors (``kubectl get events``, ``kubectl events``, ``kubectl describe``) and the same objects
through ``events.k8s.io/v1`` (``regarding``, ``note``, ``reportingController``, strict create).

Runs against the sandbox and the real control plane."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone

import pytest
from kubernetes import client

from sandbox_helpers import IMAGE_A, deployment, wait_for


def started_pod(core, ns: str, name: str):
    core.create_namespaced_pod(ns, {"metadata": {"name": name},
                                    "spec": {"containers": [{"name": "c", "image": IMAGE_A}]}})
    return wait_for(lambda: [e for e in core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={name},reason=Started").items], what=f"{name} Started event")


def test_kubectl_get_events_events_and_describe_show_a_pods_events(kubectl, core, ns):
    started_pod(core, ns, "one")
    started_pod(core, ns, "two")
    out = kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.name=one").stdout
    assert "pod/one" in out and "Started container c" in out and "pod/two" not in out
    out = kubectl("-n", ns, "get", "events", "--field-selector", "involvedObject.kind=Pod,reason=Started").stdout
    assert "pod/one" in out and "pod/two" in out and "Scheduled" not in out
    out = kubectl("-n", ns, "events", "--for", "pod/two").stdout
    assert "Started container c" in out and "Pod/two" in out and "Pod/one" not in out
    described = kubectl("-n", ns, "describe", "pod", "one").stdout
    events = described.split("Events:", 1)[1]
    assert "Scheduled" in events and "Started container c" in events and "kubelet" in events
    bad = kubectl("-n", ns, "get", "events", "--field-selector", "spec.nope=x", check=False)
    assert bad.returncode != 0 and "field label not supported: spec.nope" in bad.stderr


def test_events_k8s_io_v1_is_the_same_events_under_its_own_names(kubectl, core, cluster, ns):
    ev1 = client.EventsV1Api(cluster.api)
    core_ev = started_pod(core, ns, "web")[0]
    # raw JSON: the client's model wants an eventTime, which events recorded through core/v1 lack
    resp = ev1.list_namespaced_event(ns, field_selector="regarding.name=web,reason=Started", _preload_content=False)
    listed = json.loads(resp.data)
    assert (listed["kind"], listed["apiVersion"]) == ("EventList", "events.k8s.io/v1")
    assert [e["metadata"]["name"] for e in listed["items"]] == [core_ev.metadata.name]
    e = listed["items"][0]
    assert "message" not in e and "eventTime" in e
    assert e["note"] == core_ev.message and e["regarding"]["kind"] == "Pod"
    assert e["regarding"]["uid"] == core_ev.involved_object.uid and "involvedObject" not in e
    assert e["reportingController"] == core_ev.reporting_component == "kubelet" and e["type"] == "Normal"
    assert e["deprecatedSource"]["component"] == "kubelet" and e["deprecatedCount"] == core_ev.count
    assert "Started container c" in kubectl("-n", ns, "get", "events.v1.events.k8s.io",
                                            "--field-selector", "regarding.name=web").stdout
    with pytest.raises(client.ApiException) as err:
        ev1.list_namespaced_event(ns, field_selector="involvedObject.name=web")
    assert err.value.status == 400 and "field label not supported: involvedObject.name" in err.value.body

    resp = ev1.list_namespaced_event(ns, watch=True, field_selector="regarding.name=web", timeout_seconds=1,
                                     _preload_content=False)
    watched = [json.loads(line) for line in resp.data.decode().splitlines() if line.strip()]
    assert watched and {w["type"] for w in watched} == {"ADDED"}
    assert {(w["object"]["apiVersion"], w["object"]["regarding"]["name"]) for w in watched} == {
        ("events.k8s.io/v1", "web")}

    pod = core.read_namespaced_pod("web", ns)
    now = datetime.now(timezone.utc)
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.custom"},
            "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "reportingController": "example.com/mae",
            "reportingInstance": "mae-1", "action": "Deploy", "reason": "Rolled", "type": "Warning",
            "note": "v2 is out", "regarding": {"apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": "web",
                                               "uid": pod.metadata.uid}}
    made = ev1.create_namespaced_event(ns, body)
    assert made.note == "v2 is out" and made.series is None
    seen = core.read_namespaced_event("web.custom", ns)
    assert (seen.message, seen.reason, seen.type, seen.action) == ("v2 is out", "Rolled", "Warning", "Deploy")
    assert seen.reporting_component == "example.com/mae" and seen.involved_object.name == "web"
    assert "Rolled" in kubectl("-n", ns, "get", "events", "--field-selector", "type=Warning").stdout

    bad = dict(body, metadata={"name": "web.bad"})
    del bad["action"]
    with pytest.raises(client.ApiException) as err:
        ev1.create_namespaced_event(ns, bad)
    status = json.loads(err.value.body)
    assert err.value.status == 422 and status["reason"] == "Invalid"
    assert {c["field"] for c in status["details"]["causes"]} == {"action"}


def test_failed_create_is_a_warning_worded_like_the_replicaset_controller(kubectl, core, apps, ns):
    core.patch_namespace(ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    apps.create_namespaced_deployment(ns, deployment("web", replicas=1))
    events = wait_for(lambda: json.loads(kubectl("-n", ns, "get", "events", "--field-selector",
                                                 "reason=FailedCreate,type=Warning", "-o", "json").stdout)["items"],
                      what="a FailedCreate event")
    ev = events[0]
    assert ev["involvedObject"]["kind"] == "ReplicaSet" and ev["source"]["component"] == "replicaset-controller"
    rs = ev["involvedObject"]["name"]
    assert re.match(rf'^(\(combined from similar events\): )?Error creating: pods "{rs}-[a-z0-9]{{5}}" is forbidden: '
                    r'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
                    r'\(container "app" must set securityContext.allowPrivilegeEscalation=false\)', ev["message"]), \
        ev["message"]
    described = kubectl("-n", ns, "describe", "replicaset", rs).stdout.split("Events:", 1)[1]
    assert "FailedCreate" in described and "replicaset-controller" in described
    assert 'violates PodSecurity "restricted:latest"' in kubectl("-n", ns, "events", "--types=Warning").stdout
