"""The sandbox driven by the official Python client (kubernetes.client), as MAE will.

Every test here also runs against a real cluster (MAE_TEST_KUBECONFIG).
"""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from kubernetes import client, watch

from sandbox_helpers import IMAGE_A, IMAGE_B, deployment, read_modify_replace, wait_for

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"


def status_of(exc: client.ApiException) -> dict:
    return json.loads(exc.body)


def raw_call(cluster, method: str, path: str, body=None) -> tuple[int, dict]:
    """A request the typed client would refuse to send (it validates bodies client-side)."""
    api = cluster.api
    m, url, headers, data, _ = api.param_serialize(
        method=method, resource_path=path, body=body, auth_settings=["BearerToken"],
        header_params={"Content-Type": "application/json", "Accept": "application/json"})
    resp = api.call_api(m, url, headers, data)
    resp.read()
    return resp.status, json.loads(resp.data)


def cm(name: str, labels: dict | None = None, data: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}},
            "data": data or {"k": "v"}}


def wait_rolled_out(apps, ns: str, name: str, timeout: float = 30.0):
    def done():
        d = apps.read_namespaced_deployment(name, ns)
        st = d.status
        want = d.spec.replicas
        ok = (st.observed_generation or 0) >= d.metadata.generation and (st.updated_replicas or 0) == want \
            and (st.replicas or 0) == want and (st.available_replicas or 0) == want
        return d if ok else None
    return wait_for(done, timeout, what=f"deployment {name} rolled out")


# ---------------------------------------------------------------- CRUD and errors

def test_create_get_replace_and_server_fields(apps, ns):
    d = apps.create_namespaced_deployment(ns, deployment("api", replicas=1))
    m = d.metadata
    assert m.uid and m.creation_timestamp and int(m.resource_version) > 0 and m.generation == 1
    assert d.spec.strategy.type == "RollingUpdate"
    assert d.spec.strategy.rolling_update.max_surge == "25%"
    assert d.spec.revision_history_limit == 10 and d.spec.progress_deadline_seconds == 600
    assert d.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"

    got, replaced = read_modify_replace(
        lambda: apps.read_namespaced_deployment("api", ns),
        lambda o: apps.replace_namespaced_deployment("api", ns, o),
        lambda o: setattr(o.spec.template.spec.containers[0], "image", IMAGE_B))
    assert got.metadata.uid == m.uid
    assert replaced.metadata.generation == 2
    assert int(replaced.metadata.resource_version) > int(got.metadata.resource_version)


def test_generate_name(core, ns):
    made = core.create_namespaced_config_map(ns, {"metadata": {"generateName": "gen-"}, "data": {"a": "b"}})
    assert made.metadata.name.startswith("gen-") and len(made.metadata.name) == len("gen-") + 5


def test_stale_update_conflicts(core, ns):
    core.create_namespaced_config_map(ns, cm("c1"))
    first = core.read_namespaced_config_map("c1", ns)
    second = core.read_namespaced_config_map("c1", ns)
    first.data = {"k": "one"}
    core.replace_namespaced_config_map("c1", ns, first)
    second.data = {"k": "two"}
    with pytest.raises(client.ApiException) as err:
        core.replace_namespaced_config_map("c1", ns, second)
    assert err.value.status == 409
    st = status_of(err.value)
    assert st["kind"] == "Status" and st["reason"] == "Conflict" and st["details"]["name"] == "c1"
    assert "the object has been modified" in st["message"]
    assert core.read_namespaced_config_map("c1", ns).data == {"k": "one"}


def test_already_exists(core, ns):
    core.create_namespaced_config_map(ns, cm("dup"))
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map(ns, cm("dup"))
    assert err.value.status == 409
    st = status_of(err.value)
    assert st["reason"] == "AlreadyExists" and st["code"] == 409
    assert st["details"] == {"name": "dup", "kind": "configmaps"}
    assert st["message"] == 'configmaps "dup" already exists'


def test_invalid_name_and_missing_fields(cluster, apps, core, ns):
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map(ns, cm("Bad_Name"))
    assert err.value.status == 422
    st = status_of(err.value)
    assert st["reason"] == "Invalid" and st["details"]["kind"] == "ConfigMap"
    assert st["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123" in st["message"]

    bad = deployment("nosel")
    del bad["spec"]["selector"]
    code, st = raw_call(cluster, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", bad)
    assert code == 422 and st["kind"] == "Status" and st["reason"] == "Invalid"
    assert st["details"]["group"] == "apps" and st["details"]["kind"] == "Deployment"
    assert "spec.selector" in {c["field"] for c in st["details"]["causes"]}
    bad = deployment("noimage")
    del bad["spec"]["template"]["spec"]["containers"][0]["image"]
    code, st = raw_call(cluster, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments", bad)
    assert code == 422
    assert "spec.template.spec.containers[0].image" in {c["field"] for c in st["details"]["causes"]}

    bad = deployment("mismatch")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as err:
        apps.create_namespaced_deployment(ns, bad)
    assert err.value.status == 422
    assert "`selector` does not match template `labels`" in status_of(err.value)["message"]


def test_missing_namespace_and_missing_object(core, ns):
    with pytest.raises(client.ApiException) as err:
        core.create_namespaced_config_map("no-such-ns-" + uuid.uuid4().hex[:6], cm("x"))
    assert err.value.status == 404 and status_of(err.value)["details"]["kind"] == "namespaces"
    with pytest.raises(client.ApiException) as err:
        core.read_namespaced_config_map("absent", ns)
    assert err.value.status == 404
    st = status_of(err.value)
    assert st["reason"] == "NotFound" and st["message"] == 'configmaps "absent" not found'


def test_bad_token_is_401(cluster):
    cfg = client.Configuration()
    src = cluster.api.configuration
    cfg.host, cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file = src.host, src.ssl_ca_cert, None, None
    cfg.api_key = {"authorization": "Bearer not-the-token"}
    with client.ApiClient(cfg) as api:
        with pytest.raises(client.ApiException) as err:
            client.CoreV1Api(api).list_namespace()
    assert err.value.status == 401
    st = status_of(err.value)
    assert st["kind"] == "Status" and st["reason"] == "Unauthorized" and st["code"] == 401
    cfg.api_key = {}
    with client.ApiClient(cfg) as api:
        with pytest.raises(client.ApiException) as err:
            client.CoreV1Api(api).list_namespace()
    assert err.value.status in (401, 403)


def test_secret_string_data_is_encoded(core, ns):
    s = core.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert s.data == {"password": "aHVudGVyMg=="} and s.type == "Opaque"


# ---------------------------------------------------------------- patch

def test_three_patch_types(apps, ns):
    dep = deployment("p", replicas=1)
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    apps.create_namespaced_deployment(ns, dep)

    # Strategic merge: containers merge by name, env by name.
    sidecar = {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": IMAGE_A},
        {"name": "app", "env": [{"name": "B", "value": "2"}]}]}}}}
    d = apps.patch_namespaced_deployment("p", ns, sidecar, _content_type=SMP)
    cs = {c.name: c for c in d.spec.template.spec.containers}
    assert set(cs) == {"app", "sidecar"}
    assert cs["app"].image == IMAGE_A
    assert {e.name: e.value for e in cs["app"].env} == {"A": "1", "B": "2"}

    # $patch: delete removes one element of a merge list.
    d = apps.patch_namespaced_deployment(
        "p", ns, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}},
        _content_type=SMP)
    assert [c.name for c in d.spec.template.spec.containers] == ["app"]

    # JSON merge patch: lists are replaced wholesale, null deletes a key.
    d = apps.patch_namespaced_deployment(
        "p", ns, {"metadata": {"labels": {"tier": "web", "app": None}},
                  "spec": {"template": {"spec": {"containers": [{"name": "only", "image": IMAGE_B}]}}}},
        _content_type=MERGE)
    assert [c.name for c in d.spec.template.spec.containers] == ["only"]
    assert d.spec.template.spec.containers[0].env is None
    assert d.metadata.labels == {"tier": "web"}

    # JSON patch (RFC 6902), including a failing test op.
    d = apps.patch_namespaced_deployment(
        "p", ns, [{"op": "replace", "path": "/spec/replicas", "value": 3},
                  {"op": "add", "path": "/metadata/annotations", "value": {"x/y": "z"}}],
        _content_type=JSONPATCH)
    assert d.spec.replicas == 3 and d.metadata.annotations["x/y"] == "z"
    with pytest.raises(client.ApiException) as err:
        apps.patch_namespaced_deployment("p", ns, [{"op": "test", "path": "/spec/replicas", "value": 7}],
                                         _content_type=JSONPATCH)
    assert err.value.status == 422

    # A patch carrying a stale resourceVersion is a conflict.
    with pytest.raises(client.ApiException) as err:
        apps.patch_namespaced_deployment("p", ns, {"metadata": {"resourceVersion": "1"}}, _content_type=MERGE)
    assert err.value.status == 409


# ---------------------------------------------------------------- lists

def test_label_selectors(core, ns):
    for name, labels in [("a", {"env": "prod", "tier": "web"}), ("b", {"env": "dev", "tier": "web"}),
                         ("c", {"env": "qa"}), ("d", {})]:
        core.create_namespaced_config_map(ns, cm(name, labels))

    def names(sel):
        return sorted(i.metadata.name for i in core.list_namespaced_config_map(ns, label_selector=sel).items
                      if i.metadata.name in "abcd")

    assert names("env=prod") == ["a"]
    assert names("env!=prod") == ["b", "c", "d"]
    assert names("env in (prod,dev)") == ["a", "b"]
    assert names("env notin (prod,dev)") == ["c", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", "d"]
    assert names("tier=web,env=dev") == ["b"]
    assert [i.metadata.name for i in core.list_namespaced_config_map(
        ns, field_selector="metadata.name=c").items] == ["c"]
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_config_map(ns, label_selector="env in (prod")
    assert err.value.status == 400


def test_limit_and_continue(core, ns):
    for i in range(7):
        core.create_namespaced_config_map(ns, cm(f"page-{i}", {"paged": "yes"}))
    seen, token, pages = [], None, 0
    while True:
        res = core.list_namespaced_config_map(ns, label_selector="paged=yes", limit=3, _continue=token)
        pages += 1
        seen += [i.metadata.name for i in res.items]
        assert len(res.items) <= 3
        token = res.metadata._continue
        if not token:
            break
        # a filtered list does not say how many are left (the real API server cannot know cheaply)
        assert res.metadata.remaining_item_count is None
    assert pages == 3
    assert seen == [f"page-{i}" for i in range(7)]
    assert int(res.metadata.resource_version) > 0
    # an unfiltered one does (the namespace may hold configmaps of the cluster's own too,
    # which a real cluster's controllers add shortly after the namespace: count when settled)

    def settled_count():
        before = len(core.list_namespaced_config_map(ns).items)
        first = core.list_namespaced_config_map(ns, limit=2)
        after = len(core.list_namespaced_config_map(ns).items)
        return (first, after) if before == after else None

    first, total = wait_for(settled_count, what="a settled count")
    assert first.metadata.remaining_item_count == total - 2


# ---------------------------------------------------------------- watch

def test_watch_resumes_from_resource_version(core, ns):
    first = core.create_namespaced_config_map(ns, cm("w1"))
    rv = first.metadata.resource_version
    core.create_namespaced_config_map(ns, cm("w2"))
    core.patch_namespaced_config_map("w2", ns, {"data": {"k": "changed"}})
    core.delete_namespaced_config_map("w1", ns)

    w = watch.Watch()
    events = []
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=5):
        if ev["object"].metadata.name in ("w1", "w2"):  # not the cluster's own CA configmaps
            events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 3:
            w.stop()
    assert events == [("ADDED", "w2"), ("MODIFIED", "w2"), ("DELETED", "w1")]


def test_watch_live_events_with_selector_and_timeout(core, ns):
    core.create_namespaced_config_map(ns, cm("sel", {"watched": "yes"}))
    events = []
    started = threading.Event()

    def writer():
        started.wait(5)
        time.sleep(0.3)
        core.patch_namespaced_config_map("sel", ns, {"data": {"k": "2"}})
        core.patch_namespaced_config_map("sel", ns, {"metadata": {"labels": {"watched": "no"}}})

    t = threading.Thread(target=writer)
    t.start()
    w = watch.Watch()
    t0 = time.monotonic()
    for ev in w.stream(core.list_namespaced_config_map, ns, label_selector="watched=yes", timeout_seconds=3):
        started.set()
        events.append((ev["type"], ev["object"].metadata.name, ev["object"].data.get("k")))
    t.join()
    elapsed = time.monotonic() - t0
    # Initial state, the change, and leaving the selector looks like DELETED to the watcher.
    assert events == [("ADDED", "sel", "v"), ("MODIFIED", "sel", "2"), ("DELETED", "sel", "2")]
    assert 2.5 < elapsed < 8, f"timeoutSeconds=3 not honoured ({elapsed:.1f}s)"


@pytest.mark.sandbox_only  # a young real cluster still has the history from version 1 and replays it
def test_watch_from_compacted_resource_version_is_410(core, ns):
    w = watch.Watch()
    with pytest.raises(client.ApiException) as err:
        for _ in w.stream(core.list_namespaced_config_map, ns, resource_version="1", timeout_seconds=5):
            pass
    assert err.value.status == 410

    # The raw stream, as an informer sees it: HTTP 200 then an ERROR event with a 410 Status.
    resp = core.list_namespaced_config_map(ns, watch=True, resource_version="1", timeout_seconds=5,
                                           _preload_content=False)
    try:
        if resp.status == 410:
            assert status_of(client.ApiException(http_resp=resp))["code"] == 410
        else:
            line = json.loads(resp.data.decode().splitlines()[0])
            assert line["type"] == "ERROR" and line["object"]["code"] == 410
            assert line["object"]["reason"] in ("Expired", "Gone")
    finally:
        resp.release_conn()


# ---------------------------------------------------------------- semantics

def test_generation_only_bumped_by_spec_changes(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("gen", replicas=1))
    d = wait_rolled_out(apps, ns, "gen")
    assert d.metadata.generation == 1 and d.status.observed_generation == 1
    d = apps.patch_namespaced_deployment("gen", ns, {"metadata": {"labels": {"extra": "x"}}}, _content_type=MERGE)
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment_status("gen", ns, {"status": {"collisionCount": 0}}, _content_type=MERGE)
    assert d.metadata.generation == 1
    # Status written through the main resource is ignored; spec through /status is ignored.
    _, after = read_modify_replace(lambda: apps.read_namespaced_deployment("gen", ns),
                                   lambda o: apps.replace_namespaced_deployment("gen", ns, o),
                                   lambda o: setattr(o.status, "replicas", 42))
    assert after.status.replicas != 42 and after.metadata.generation == 1
    _, after = read_modify_replace(lambda: apps.read_namespaced_deployment("gen", ns),
                                   lambda o: apps.replace_namespaced_deployment_status("gen", ns, o),
                                   lambda o: setattr(o.spec, "replicas", 5))
    assert after.spec.replicas == 1 and after.metadata.generation == 1
    d = apps.patch_namespaced_deployment("gen", ns, {"spec": {"replicas": 2}}, _content_type=MERGE)
    assert d.metadata.generation == 2
    d = wait_rolled_out(apps, ns, "gen")
    assert d.status.observed_generation == 2 and d.status.ready_replicas == 2


def test_deployment_status_conditions_and_events(apps, core, ns):
    apps.create_namespaced_deployment(ns, deployment("cond", replicas=2))
    d = wait_rolled_out(apps, ns, "cond")
    conds = {c.type: c for c in d.status.conditions}
    assert (conds["Available"].status, conds["Available"].reason) == ("True", "MinimumReplicasAvailable")
    assert (conds["Progressing"].status, conds["Progressing"].reason) == ("True", "NewReplicaSetAvailable")
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "1"
    assert d.status.ready_replicas == 2 and not d.status.unavailable_replicas

    pods = core.list_namespaced_pod(ns, label_selector="app=cond").items
    assert len(pods) == 2
    pod = pods[0]
    assert pod.status.phase == "Running" and pod.spec.node_name
    pconds = {c.type: c.status for c in pod.status.conditions}
    assert pconds["Ready"] == "True" and pconds["PodScheduled"] == "True"
    cs = pod.status.container_statuses[0]
    assert cs.ready and cs.state.running and cs.restart_count == 0

    def reasons(kind, name):
        evs = core.list_namespaced_event(
            ns, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}").items
        return {e.reason for e in evs}

    rs_name = apps.list_namespaced_replica_set(ns, label_selector="app=cond").items[0].metadata.name
    wait_for(lambda: {"Scheduled", "Pulled", "Created", "Started"} <= reasons("Pod", pod.metadata.name),
             what="pod events")
    assert "SuccessfulCreate" in reasons("ReplicaSet", rs_name)
    assert "ScalingReplicaSet" in reasons("Deployment", "cond")


def test_recreate_strategy_and_scale_subresource(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("re", replicas=2, strategy={"type": "Recreate"}))
    wait_rolled_out(apps, ns, "re")
    apps.patch_namespaced_deployment(
        "re", ns, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": IMAGE_B}]}}}},
        _content_type=SMP)
    d = wait_rolled_out(apps, ns, "re")
    assert d.metadata.annotations["deployment.kubernetes.io/revision"] == "2"
    rss = {r.spec.template.spec.containers[0].image: r.spec.replicas
           for r in apps.list_namespaced_replica_set(ns, label_selector="app=re").items}
    assert rss == {IMAGE_A: 0, IMAGE_B: 2}

    scale = apps.patch_namespaced_deployment_scale("re", ns, {"spec": {"replicas": 3}}, _content_type=MERGE)
    assert scale.spec.replicas == 3
    d = wait_rolled_out(apps, ns, "re")
    assert d.status.available_replicas == 3
    assert apps.read_namespaced_deployment_scale("re", ns).status.replicas == 3


def test_owner_reference_garbage_collection(apps, core, ns):
    owner = core.create_namespaced_config_map(ns, cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    dep = cm("dependent")
    dep["metadata"]["ownerReferences"] = [ref]
    core.create_namespaced_config_map(ns, dep)
    orphan = cm("orphan")
    orphan["metadata"]["ownerReferences"] = [ref]
    core.create_namespaced_config_map(ns, orphan)
    core.patch_namespaced_config_map("orphan", ns, {"metadata": {"ownerReferences": None}}, _content_type=MERGE)
    core.delete_namespaced_config_map("owner", ns)

    def gone():
        names = {c.metadata.name for c in core.list_namespaced_config_map(ns).items}
        return "dependent" not in names
    wait_for(gone, what="dependent configmap collected")
    assert core.read_namespaced_config_map("orphan", ns)

    apps.create_namespaced_deployment(ns, deployment("gc", replicas=2))
    wait_rolled_out(apps, ns, "gc")
    assert apps.list_namespaced_replica_set(ns, label_selector="app=gc").items
    apps.delete_namespaced_deployment("gc", ns)
    wait_for(lambda: not apps.list_namespaced_replica_set(ns, label_selector="app=gc").items, what="rs collected")
    wait_for(lambda: not core.list_namespaced_pod(ns, label_selector="app=gc").items, what="pods collected")


def test_orphan_propagation_keeps_dependents(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("orph", replicas=1))
    wait_rolled_out(apps, ns, "orph")
    apps.delete_namespaced_deployment("orph", ns, propagation_policy="Orphan")
    wait_for(lambda: not apps.list_namespaced_deployment(ns).items, what="deployment deleted")
    time.sleep(0.3)
    rss = apps.list_namespaced_replica_set(ns, label_selector="app=orph").items
    assert len(rss) == 1 and not rss[0].metadata.owner_references


def test_finalizers_hold_deletion(core, ns):
    body = cm("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    core.create_namespaced_config_map(ns, body)
    core.delete_namespaced_config_map("fin", ns)
    held = core.read_namespaced_config_map("fin", ns)
    assert held.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("fin", ns, {"metadata": {"finalizers": None}}, _content_type=MERGE)
    wait_for(lambda: "fin" not in {c.metadata.name for c in core.list_namespaced_config_map(ns).items},
             what="finalized object removed")


def test_probes_are_defaulted_as_the_api_server_defaults_them(core, ns):
    """A client that compares what it sent with what it reads back (MAE's apply diff does) sees
    the same defaults on the sandbox and the real server."""
    probe = {"httpGet": {"port": 80}}
    core.create_namespaced_pod(ns, {"metadata": {"name": "probed"}, "spec": {"containers": [
        {"name": "c", "image": "nginx:1.25", "livenessProbe": probe,
         "readinessProbe": {"httpGet": {"path": "/ready", "port": 80}, "periodSeconds": 5},
         "startupProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 30}}]}})
    raw = json.loads(core.read_namespaced_pod("probed", ns, _preload_content=False).data)
    container = raw["spec"]["containers"][0]
    assert container["livenessProbe"] == {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1,
                                          "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert container["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 80, "scheme": "HTTP"},
                                           "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1,
                                           "failureThreshold": 3}
    assert container["startupProbe"] == {"tcpSocket": {"port": 80}, "timeoutSeconds": 1, "periodSeconds": 10,
                                         "successThreshold": 1, "failureThreshold": 30}
