"""Conformance checks beyond one kind's verbs: deletion propagation, selectors, discovery, watch
filtering, status/spec separation, defaults, and that every object the controllers made parses."""
from __future__ import annotations

import base64
import json
import time

from kubernetes import client, watch

from conformance import GROUPS, KINDS, MERGE, SMP, Checks, api_error, expect
from conformance_kinds import status_body
from sandbox_helpers import deployment, read_modify_replace, wait_for

REAL_SELECTOR_ERROR = "field label not supported: spec.foo"  # fields.go / the registries' AttrFunc


def deletion_propagation(c: Checks, api, ns: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("fg", replicas=1))
    rs = deployment("orph", replicas=1)
    rs["kind"] = "ReplicaSet"
    apps.create_namespaced_replica_set(ns, rs)
    wait_for(lambda: core.list_namespaced_pod(ns, label_selector="app in (fg,orph)").items
             and len(core.list_namespaced_pod(ns, label_selector="app in (fg,orph)").items) == 2, what="2 pods")
    with c("deployments: Foreground delete answers the object with its finalizer, then GC removes all"):
        # A deferred deletion answers the object (200; 202 only for orphanDependents=false).
        out = apps.delete_namespaced_deployment("fg", ns, propagation_policy="Foreground")
        expect(out["kind"] == "Deployment" and "foregroundDeletion" in out["metadata"].get("finalizers", [])
               and out["metadata"].get("deletionTimestamp"), "the Deployment with finalizer foregroundDeletion", out)
        wait_for(lambda: api_error(apps.read_namespaced_deployment, "fg", ns).status == 404
                 if not core.list_namespaced_pod(ns, label_selector="app=fg").items else False,
                 timeout=10, what="deployment and pods gone")
    with c("replicasets: Orphan delete answers the object, then leaves its pods without ownerReferences"):
        out = apps.delete_namespaced_replica_set("orph", ns, propagation_policy="Orphan")
        expect(out["kind"] == "ReplicaSet" and "orphan" in out["metadata"].get("finalizers", []),
               "the ReplicaSet with finalizer orphan", out)
        wait_for(lambda: api_error(apps.read_namespaced_replica_set, "orph", ns).status == 404, timeout=10,
                 what="replicaset gone")
        pods = core.list_namespaced_pod(ns, label_selector="app=orph").items
        expect(len(pods) == 1 and not pods[0].metadata.owner_references, "its pod, without ownerReferences",
               [(p.metadata.name, p.metadata.owner_references) for p in pods])


def selectors(c: Checks, core, ns: str, pod: str, node: str) -> None:
    with c("pods: field selectors status.phase and spec.nodeName"):
        for sel in ("status.phase=Running", f"spec.nodeName={node}", f"metadata.name={pod}"):
            names = [p.metadata.name for p in core.list_namespaced_pod(ns, field_selector=sel).items]
            expect(pod in names, f"{pod} listed for {sel}", names)
        expect(core.list_namespaced_pod(ns, field_selector="status.phase=Failed,metadata.name=" + pod).items == [],
               "no Failed pod", None)
    with c("events: field selector involvedObject.name"):
        evs = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={pod}").items
        expect(evs and all(e.involved_object.name == pod for e in evs), f"events about {pod}",
               [(e.reason, e.involved_object.name) for e in evs])
    with c("configmaps: an unsupported field selector is 400 BadRequest"):
        exc = api_error(core.list_namespaced_config_map, ns, field_selector="spec.foo=x")
        expect(exc.status == 400 and status_body(exc)["reason"] == "BadRequest"
               and REAL_SELECTOR_ERROR in status_body(exc)["message"], f"400 '{REAL_SELECTOR_ERROR}'", exc.body)
    with c("configmaps: set-based label selectors"):
        for i, tier in enumerate(("x", "y", "z")):
            core.create_namespaced_config_map(ns, {"metadata": {"name": f"sel-{i}", "labels": {"tier": tier}}})

        def names(sel):
            return sorted(m.metadata.name for m in core.list_namespaced_config_map(ns, label_selector=sel).items
                          if m.metadata.name.startswith("sel-"))
        for sel, want in (("tier in (x,y)", ["sel-0", "sel-1"]), ("tier notin (x,y),tier", ["sel-2"]),
                          ("tier,tier!=z", ["sel-0", "sel-1"]), ("!tier", [])):
            expect(names(sel) == want, f"{want} for {sel!r}", names(sel))


def discovery(c: Checks, api) -> None:
    with c("discovery: /version as VersionInfo"):
        v = client.VersionApi(api).get_code()
        expect(isinstance(v, client.VersionInfo) and v.major == "1" and v.git_version.startswith("v1."),
               "VersionInfo v1.x", v)
    with c("discovery: /api and /apis as V1APIVersions and V1APIGroupList"):
        expect(client.CoreApi(api).get_api_versions().versions == ["v1"], "versions [v1]", None)
        groups = {g.name: g.preferred_version.group_version for g in client.ApisApi(api).get_api_versions().groups}
        want = {g for g in GROUPS.values() if g}
        expect(want <= set(groups) and groups["autoscaling"] == "autoscaling/v2", f"{sorted(want)}, autoscaling/v2",
               groups)


def watch_filtering(c: Checks, core, ns: str) -> None:
    with c("watch with a label selector: DELETED when a change unmatches, ADDED when it matches again"):
        rv = core.list_namespaced_config_map(ns, limit=1).metadata.resource_version
        core.create_namespaced_config_map(ns, {"metadata": {"name": "flip", "labels": {"sel": "yes"}}})
        for value in ("no", "yes"):
            core.patch_namespaced_config_map("flip", ns, {"metadata": {"labels": {"sel": value}}}, _content_type=MERGE)
        w, types = watch.Watch(), []
        for ev in w.stream(core.list_namespaced_config_map, ns, label_selector="sel=yes", resource_version=rv,
                           timeout_seconds=2):
            types.append(ev["type"])
            if len(types) == 3:
                w.stop()
                break
        expect(types == ["ADDED", "DELETED", "ADDED"], "ADDED, DELETED, ADDED", types)
    with c("watch ends after timeout_seconds"):
        t0 = time.monotonic()
        got = list(watch.Watch().stream(core.list_namespaced_config_map, ns, label_selector="none=here",
                                        timeout_seconds=1))
        took = time.monotonic() - t0
        expect(got == [] and 0.8 < took < 3, "no events, the stream closed after ~1 s", (got, round(took, 2)))


def status_and_defaults(c: Checks, api, ns: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    split = deployment("split", replicas=1)
    split["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    apps.create_namespaced_deployment(ns, split)
    with c("deployments: a status update leaves spec alone, a main update leaves status alone"):
        def bump(d):
            d.spec.replicas = 5
        _, out = read_modify_replace(lambda: apps.read_namespaced_deployment_status("split", ns),
                                     lambda d: apps.replace_namespaced_deployment_status("split", ns, d), bump)
        expect(out.spec.replicas == 1, "spec.replicas still 1", out.spec.replicas)

        def fake(d):
            d.status.replicas = 99
        _, out = read_modify_replace(lambda: apps.read_namespaced_deployment("split", ns),
                                     lambda d: apps.replace_namespaced_deployment("split", ns, d), fake)
        expect(out.status.replicas != 99, "status.replicas not 99", out.status.replicas)
    with c("deployments: a strategic merge patch merges containers by name, a merge patch replaces the list"):
        spec = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}}}
        got = apps.patch_namespaced_deployment("split", ns, spec, _content_type=SMP).spec.template.spec.containers
        expect(len(got) == 1 and got[0].image.endswith("3.10") and got[0].ports, "the image changed, ports kept",
               got)
        got = apps.patch_namespaced_deployment("split", ns, spec, _content_type=MERGE).spec.template.spec.containers
        expect(len(got) == 1 and not got[0].ports, "the container list replaced: no ports", got)
    with c("secrets: stringData is stored as base64 data"):
        core.create_namespaced_secret(ns, {"metadata": {"name": "sd"}, "stringData": {"k": "v"}})
        got = core.read_namespaced_secret("sd", ns)
        expect(got.data == {"k": base64.b64encode(b"v").decode()} and not got.string_data and got.type == "Opaque",
               "data {k: dg==}, type Opaque, no stringData", (got.data, got.string_data, got.type))
    with c("services: ClusterIP defaults"):
        svc = core.create_namespaced_service(ns, {"metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
        s, p = svc.spec, svc.spec.ports[0]
        expect(s.type == "ClusterIP" and s.cluster_ip and s.cluster_ips == [s.cluster_ip]
               and s.session_affinity == "None" and p.protocol == "TCP" and p.target_port == 8080,
               "type ClusterIP, an IP, sessionAffinity None, TCP, targetPort 8080", s)
    with c("configmaps: create in a missing namespace is 404 naming the namespace"):
        exc = api_error(core.create_namespaced_config_map, "no-such-ns", {"metadata": {"name": "x"}})
        expect(exc.status == 404 and status_body(exc)["message"] == 'namespaces "no-such-ns" not found',
               "404 'namespaces \"no-such-ns\" not found'", exc.body)


def everything_parses(c: Checks, api) -> None:
    """Every object in the cluster — what the controllers, kubelet and node made too — through the
    typed lists. events.k8s.io is left out: this client's EventsV1Event requires eventTime, which the
    real server leaves null on every Event a legacy recorder (kubelet, controllers) writes."""
    for kind in KINDS:
        if kind.name == "events.k8s.io":
            continue
        with c(f"{kind.name}: every object in the cluster parses as a typed list"):
            api_obj = getattr(client, kind.api)(api)
            fn = getattr(api_obj, f"list_{kind.suffix}_for_all_namespaces" if kind.namespaced else f"list_{kind.suffix}")
            raw = json.loads(fn(_preload_content=False).data)
            typed = fn()
            expect(len(typed.items) == len(raw["items"]), f"{len(raw['items'])} items", len(typed.items))


def living_workloads(api, ns: str) -> None:
    """Objects for the controllers to work on while the other checks run (everything_parses reads
    what they made: ReplicaSets, pods with statuses, ControllerRevisions, events, a finished Job)."""
    from conformance import BODIES
    for name, kind in (("live-deploy", "deployments"), ("live-sts", "statefulsets"), ("live-ds", "daemonsets"),
                       ("live-job", "jobs"), ("live-rc", "replicationcontrollers")):
        k = next(k for k in KINDS if k.name == kind)
        k.fn("create", api)(ns, {"metadata": {"name": name}, **BODIES[kind](name, ns)})


def client_library(c: Checks, sb, api, ns: str) -> None:
    """The client's own helpers over the API: kubeconfig loading, utils, leader election, informer."""
    from kubernetes import config, utils
    from kubernetes.informer import SharedInformer
    from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
    from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock
    core = client.CoreV1Api(api)
    with c("client: config.new_client_from_config with the sandbox's kubeconfig"):
        other = config.new_client_from_config(config_file=str(sb.kubeconfig_path))
        names = [n.metadata.name for n in client.CoreV1Api(other).list_namespace().items]
        expect(ns in names, f"{ns} among the namespaces", names)
    with c("client: utils.create_from_dict"):
        made = utils.create_from_dict(api, deployment("from-dict", replicas=1), namespace=ns)
        expect(made and made[0].metadata.name == "from-dict", "the created Deployment", made)
    with c("client: leaderelection LeaseLock create, get, update"):
        lock = LeaseLock("conf-leader", ns, "me")
        lock.api_instance = client.CoordinationV1Api(api)
        now = time.strftime("%Y-%m-%d %H:%M:%S.000000")
        expect(lock.create("conf-leader", ns, LeaderElectionRecord("me", "15", now, now)), "created", None)
        ok, record = lock.get("conf-leader", ns)
        expect(ok and record.holder_identity == "me" and record.lease_duration == "15", "the record back", record)
        expect(lock.update("conf-leader", ns, LeaderElectionRecord("me", "15", now, now)), "updated", None)
    with c("client: SharedInformer follows adds, changes and deletes"):
        seen = []
        inf = SharedInformer(core.list_namespaced_config_map, namespace=ns, label_selector="inf=yes")
        for t in ("ADDED", "MODIFIED", "DELETED"):
            inf.add_event_handler(t, lambda obj, t=t: seen.append((t, obj.metadata.name)))
        inf.start()
        try:
            core.create_namespaced_config_map(ns, {"metadata": {"name": "inf", "labels": {"inf": "yes"}}})
            wait_for(lambda: inf.cache.list(), timeout=5, what="informer cache filled")
            core.patch_namespaced_config_map("inf", ns, {"data": {"x": "1"}}, _content_type=MERGE)
            core.delete_namespaced_config_map("inf", ns)
            wait_for(lambda: ("DELETED", "inf") in seen, timeout=5, what="DELETED handled")
            expect(seen == [("ADDED", "inf"), ("MODIFIED", "inf"), ("DELETED", "inf")] and not inf.cache.list(),
                   "ADDED, MODIFIED, DELETED and an empty cache", seen)
        finally:
            inf.stop()


def list_versions(c: Checks, core, ns: str) -> None:
    with c("configmaps: list with resource_version=0 (any version, NotOlderThan)"):
        got = core.list_namespaced_config_map(ns, resource_version="0", resource_version_match="NotOlderThan")
        expect(isinstance(got, client.V1ConfigMapList) and got.metadata.resource_version, "a V1ConfigMapList", got.metadata)
    with c("configmaps: list with resource_version_match=Exact reads that version's state"):
        core.create_namespaced_config_map(ns, {"metadata": {"name": "exact", "labels": {"exact": "yes"}}})
        rv = core.list_namespaced_config_map(ns, label_selector="exact=yes").metadata.resource_version
        core.delete_namespaced_config_map("exact", ns)
        got = core.list_namespaced_config_map(ns, label_selector="exact=yes", resource_version=rv,
                                              resource_version_match="Exact")
        expect([m.metadata.name for m in got.items] == ["exact"] and got.metadata.resource_version == rv,
               f"[exact] at resourceVersion {rv}", ([m.metadata.name for m in got.items], got.metadata.resource_version))
    with c("configmaps: continue pages are a snapshot of the first page's resourceVersion"):
        for i in range(3):
            core.create_namespaced_config_map(ns, {"metadata": {"name": f"snap-{i}", "labels": {"snap": "yes"}}})
        first = core.list_namespaced_config_map(ns, label_selector="snap=yes", limit=2)
        core.create_namespaced_config_map(ns, {"metadata": {"name": "snap-9", "labels": {"snap": "yes"}}})
        rest = core.list_namespaced_config_map(ns, label_selector="snap=yes", limit=10, _continue=first.metadata._continue)
        names = [m.metadata.name for m in first.items + rest.items]
        expect(names == ["snap-0", "snap-1", "snap-2"], "snap-0..2 (snap-9 came after the snapshot)", names)
    with c("watch without a resourceVersion starts with ADDED for what exists"):
        w, got = watch.Watch(), []
        for ev in w.stream(core.list_namespaced_config_map, ns, label_selector="snap=yes", timeout_seconds=2):
            got.append((ev["type"], ev["object"].metadata.name))
            if len(got) == 4:
                w.stop()
                break
        expect(sorted(got) == [("ADDED", f"snap-{i}") for i in (0, 1, 2, 9)], "ADDED for snap-0,1,2,9", got)


def pod_subresources(c: Checks, core, ns: str) -> None:
    """Subresources beyond status/log/exec/attach/portforward that the real server serves."""
    core.create_namespaced_pod(ns, {"metadata": {"name": "evictee"}, "spec": {
        "terminationGracePeriodSeconds": 0, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}})
    with c("pods/eviction: create_namespaced_pod_eviction evicts the pod"):
        core.create_namespaced_pod_eviction("evictee", ns, client.V1Eviction(
            metadata=client.V1ObjectMeta(name="evictee", namespace=ns),
            delete_options=client.V1DeleteOptions(grace_period_seconds=0)))
        wait_for(lambda: api_error(core.read_namespaced_pod, "evictee", ns).status == 404, timeout=5,
                 what="evicted pod gone")
    with c("serviceaccounts/token: a TokenRequest answers a token"):
        got = core.create_namespaced_service_account_token("default", ns, client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)))
        expect(got.status and got.status.token and got.status.expiration_timestamp, "status.token and expiry", got)


def graceful_pod_delete(c: Checks, core, ns: str) -> None:
    """A running pod's delete without gracePeriodSeconds: the registry's graceful deletion (pod
    strategy CheckGracefulDelete) answers the pod with deletionTimestamp and the grace period, a
    watch sees it MODIFIED then DELETED once the kubelet has stopped it."""
    core.create_namespaced_pod(ns, {"metadata": {"name": "graceful"}, "spec": {
        "terminationGracePeriodSeconds": 5, "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.9"}]}})
    wait_for(lambda: core.read_namespaced_pod("graceful", ns).spec.node_name, what="pod graceful scheduled")
    with c("pods: a graceful delete answers the pod with deletionTimestamp and its grace period"):
        out = core.delete_namespaced_pod("graceful", ns)
        expect(out.metadata.deletion_timestamp and out.metadata.deletion_grace_period_seconds == 5,
               "deletionTimestamp and deletionGracePeriodSeconds 5",
               (out.metadata.deletion_timestamp, out.metadata.deletion_grace_period_seconds))


def immutable_fields(c: Checks, api, ns: str) -> None:
    """Updates the real validation refuses with 422 Invalid ``field is immutable``."""
    apps, core, rbac = client.AppsV1Api(api), client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("immut", replicas=0))
    core.create_namespaced_config_map(ns, {"metadata": {"name": "frozen"}, "data": {"k": "v"}, "immutable": True})
    rbac.create_namespaced_role_binding(ns, {"metadata": {"name": "rb"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "a"}, "subjects": []})
    cases = (
        ("deployments: spec.selector", lambda: apps.patch_namespaced_deployment(
            "immut", ns, {"spec": {"selector": {"matchLabels": {"app": "other"}},
                                   "template": {"metadata": {"labels": {"app": "other"}}}}}, _content_type=SMP),
         "spec.selector", "field is immutable"),
        ("configmaps: data of an immutable ConfigMap", lambda: core.patch_namespaced_config_map(
            "frozen", ns, {"data": {"k": "w"}}, _content_type=MERGE), "data", "field is immutable when `immutable` is set"),
        ("rolebindings: roleRef", lambda: rbac.patch_namespaced_role_binding(
            "rb", ns, {"roleRef": {"name": "b"}}, _content_type=MERGE), "roleRef", "cannot change roleRef"),
    )
    for what, change, field, words in cases:
        with c(f"{what} cannot change: 422 Invalid"):
            exc = api_error(change)
            body = status_body(exc)
            fields = [x.get("field") for x in (body.get("details") or {}).get("causes") or []]
            expect(exc.status == 422 and body["reason"] == "Invalid" and field in fields and words in body["message"],
                   f"422 Invalid, cause {field}, {words!r}", exc.body)
