"""DaemonSet, StatefulSet and ReplicationController controllers, plus what they and the Job
controller (``jobs.py``) share: creating pods from a template (through the registry, so
admission and the kubelet treat them like any ReplicaSet's pods) and ControllerRevisions.

Like the Deployment/ReplicaSet controllers (``controllers.py``) they are work queues fed by
store listeners, yield to API traffic through the shared ``PACER`` and write through the
registry; dependents carry controller owner references, so the garbage collector removes
them with their owner.

* DaemonSet: one pod per node that fits (``nodeSelector``, taints vs tolerations; a cordoned
  node still runs it, as the real controller's tolerations say), bound to that node by node
  affinity; pods labelled ``controller-revision-hash``/``pod-template-generation``; RollingUpdate
  replaces old pods at most ``maxUnavailable`` at a time; status counters as
  ``kubectl rollout status ds`` reads them.
* StatefulSet: pods ``NAME-0..N-1`` (``statefulset.kubernetes.io/pod-name``,
  ``apps.kubernetes.io/pod-index``, hostname/subdomain).  ``OrderedReady`` creates them in
  order, each once the previous is Ready, and scales down from the highest ordinal one at a
  time; ``Parallel`` does both at once.  RollingUpdate replaces pods from the highest ordinal
  down to ``partition``, one at a time, each once all are Ready; ``currentRevision`` becomes
  ``updateRevision`` when every pod is updated and Ready.  No PersistentVolumeClaims.
* ReplicationController: the ReplicaSet controller on v1 ReplicationControllers.
"""
from __future__ import annotations

import json
import time

from .controllers import (OwnerController, ReplicaSetController, controller_ref, owner_ref, pod_is_ready,
                          pod_ready_since, _omit_zero, template_hash)
from .registry import ApiError
from .resources import (CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS, REPLICATIONCONTROLLERS, STATEFULSETS,
                        int_or_percent)

REVISION_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION = "pod-template-generation"
STS_POD_NAME = "statefulset.kubernetes.io/pod-name"
STS_POD_INDEX = "apps.kubernetes.io/pod-index"
_DS_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


class PodOwnerController(OwnerController):
    """A controller whose objects (``rt``) own pods made from a template."""

    def owned_pods(self, owner: dict) -> list:
        uid = owner["metadata"]["uid"]
        return [p for p in self.store.dependents_of(uid)
                if p.res == PODS.key and (controller_ref(p.obj) or {}).get("uid") == uid
                and not p.obj["metadata"].get("deletionTimestamp")]

    def create_pod(self, owner: dict, tpl: dict, name: str | None = None, labels: dict | None = None,
                   spec: dict | None = None, annotations: dict | None = None, event: str | None = None):
        """Create a pod from ``tpl``; a refusal (admission, quota) is a FailedCreate event and a retry."""
        meta = owner["metadata"]
        tmeta = tpl.get("metadata") or {}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"namespace": meta["namespace"],
                            "labels": {**(tmeta.get("labels") or {}), **(labels or {})},
                            "ownerReferences": [owner_ref(owner, self.rt)]},
               "spec": {**json.loads(json.dumps(tpl.get("spec") or {})), **(spec or {})}}
        if name:
            pod["metadata"]["name"] = name
        else:
            pod["metadata"]["generateName"] = f"{meta['name']}-"
        if tmeta.get("annotations") or annotations:
            pod["metadata"]["annotations"] = {**(tmeta.get("annotations") or {}), **(annotations or {})}
        try:
            p = self.registry.create(PODS, meta["namespace"], pod, internal=True)
        except ApiError as exc:
            self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {exc.message}", self.name)
            self.enqueue_after((meta["namespace"], meta["name"]), 1.0)
            return None
        self.recorder.event(owner, "Normal", "SuccessfulCreate", event or f"Created pod: {p.name}", self.name)
        return p

    def delete_pod(self, owner: dict, p, event: str | None = None) -> bool:
        try:
            self.registry.delete(PODS, p.ns, p.name, {"preconditions": {"uid": p.obj["metadata"]["uid"]}})
        except ApiError:
            return False
        self.recorder.event(owner, "Normal", "SuccessfulDelete", event or f"Deleted pod: {p.name}", self.name)
        return True

    def revision(self, entry, tpl: dict, selector_labels: dict) -> tuple[str, str]:
        """The ControllerRevision of ``tpl`` (created, or made the newest again on a rollback):
        returns (hash, revision name)."""
        owner = entry.obj
        meta = owner["metadata"]
        h = template_hash(tpl, (owner.get("status") or {}).get("collisionCount"))
        name = f"{meta['name']}-{h}"
        owned = [e for e in self.store.dependents_of(meta["uid"]) if e.res == CONTROLLERREVISIONS.key]
        newest = max((e.obj.get("revision", 0) for e in owned), default=0)
        mine = next((e for e in owned if e.name == name), None)
        if mine is None:
            body = {"metadata": {"name": name, "namespace": meta["namespace"],
                                 "labels": {**selector_labels, "controller.kubernetes.io/hash": h},
                                 "ownerReferences": [owner_ref(owner, self.rt)]},
                    "data": {"spec": {"template": {**tpl, "$patch": "replace"}}}, "revision": newest + 1}
            try:
                self.registry.create(CONTROLLERREVISIONS, meta["namespace"], body, internal=True)
            except ApiError:
                pass
        elif mine.obj.get("revision", 0) < newest:
            self.registry.write(CONTROLLERREVISIONS, mine.shallow(revision=newest + 1), old=mine)
        return h, name

    def revision_template(self, ns: str, name: str) -> dict | None:
        e = self.store.get(CONTROLLERREVISIONS.key, ns, name)
        if e is None:
            return None
        tpl = dict(((e.obj.get("data") or {}).get("spec") or {}).get("template") or {})
        tpl.pop("$patch", None)
        return tpl

    def write_status(self, entry, status: dict) -> None:
        if status != (entry.obj.get("status") or {}):
            self.registry.write_status(self.rt, entry.shallow(status=status), old=entry)


def available(pod: dict, min_ready: int, now: float) -> bool:
    return pod_is_ready(pod) and (min_ready <= 0 or pod_ready_since(pod) + min_ready <= now)


def _tolerated(taint: dict, tolerations: list) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        if t.get("operator") == "Exists" and (not t.get("key") or t["key"] == taint.get("key")):
            return True
        if t.get("key") == taint.get("key") and t.get("value", "") == taint.get("value", ""):
            return True
    return False


class DaemonSetController(PodOwnerController):
    name = "daemonset-controller"
    rt = DAEMONSETS

    def on_change(self, res: str, etype: str, obj: dict, old: dict | None) -> None:
        if res == NODES.key:
            for e in self.store.iter(DAEMONSETS.key):
                self.enqueue((e.ns, e.name))
        else:
            super().on_change(res, etype, obj, old)

    @staticmethod
    def should_run(node: dict, pod_spec: dict) -> bool:
        labels = node["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
            return False
        tolerations = (pod_spec.get("tolerations") or []) + _DS_TOLERATIONS
        return all(_tolerated(t, tolerations) for t in (node.get("spec") or {}).get("taints") or []
                   if t.get("effect") in ("NoSchedule", "NoExecute"))

    @staticmethod
    def node_of(pod: dict) -> str:
        if pod["spec"].get("nodeName"):
            return pod["spec"]["nodeName"]
        terms = ((((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                  .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or [])
        for term in terms:
            for f in term.get("matchFields") or []:
                if f.get("key") == "metadata.name" and f.get("values"):
                    return f["values"][0]
        return ""

    def sync(self, key) -> None:
        ns, name = key
        entry = self.live(key)
        if entry is None:
            return
        ds = entry.obj
        spec = ds["spec"]
        tpl = spec.get("template") or {}
        h, _ = self.revision(entry, tpl, (spec.get("selector") or {}).get("matchLabels") or {})
        wanted = sorted(n.name for n in self.store.iter(NODES.key) if self.should_run(n.obj, tpl.get("spec") or {}))
        by_node: dict[str, list] = {}
        for p in self.owned_pods(ds):
            by_node.setdefault(self.node_of(p.obj), []).append(p)
        gen = str(ds["metadata"].get("generation", 1))
        for node, pods in list(by_node.items()):
            for p in pods:  # failed pods, pods on nodes that no longer fit, duplicates: deleted
                phase = (p.obj.get("status") or {}).get("phase")
                if node not in wanted or phase == "Failed" or p is not pods[0]:
                    if self.delete_pod(ds, p):
                        pods.remove(p)
            if not pods:
                del by_node[node]
        for node in wanted:
            if node not in by_node:
                affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}}
                tolerations = (tpl.get("spec") or {}).get("tolerations") or []
                p = self.create_pod(ds, tpl, labels={REVISION_LABEL: h, TEMPLATE_GENERATION: gen},
                                    spec={"affinity": affinity, "tolerations": tolerations + [
                                        t for t in _DS_TOLERATIONS if t not in tolerations]})
                if p is not None:
                    by_node[node] = [p]
        now = time.time()
        min_ready = spec.get("minReadySeconds", 0) or 0
        mine = [by_node[n][0] for n in wanted if n in by_node]
        avail = [p for p in mine if available(p.obj, min_ready, now)]
        if (spec.get("updateStrategy") or {}).get("type") == "RollingUpdate":
            max_unavailable = max(1, int_or_percent(
                ((spec["updateStrategy"].get("rollingUpdate") or {}).get("maxUnavailable", 1)), len(wanted), True))
            unavailable = len(wanted) - len(avail)
            old = [p for p in mine if (p.obj["metadata"].get("labels") or {}).get(REVISION_LABEL) != h]
            for p in sorted(old, key=lambda p: p in avail):  # the unavailable old pods go first, for free
                if p in avail:
                    if unavailable >= max_unavailable:
                        break
                    unavailable += 1
                self.delete_pod(ds, p)
        ready = sum(1 for p in mine if pod_is_ready(p.obj))
        updated = sum(1 for p in mine if (p.obj["metadata"].get("labels") or {}).get(REVISION_LABEL) == h)
        status = {"currentNumberScheduled": len(mine), "numberMisscheduled": 0,
                  "desiredNumberScheduled": len(wanted), "numberReady": ready,
                  **_omit_zero({"observedGeneration": ds["metadata"].get("generation", 1),
                                "updatedNumberScheduled": updated, "numberAvailable": len(avail),
                                "numberUnavailable": len(wanted) - len(avail)})}
        self.write_status(entry, status)
        if min_ready and len(avail) < ready:
            self.enqueue_after(key, min_ready / 2)


class StatefulSetController(PodOwnerController):
    name = "statefulset-controller"
    rt = STATEFULSETS

    @staticmethod
    def ordinal(sts_name: str, pod_name: str) -> int | None:
        prefix = sts_name + "-"
        if pod_name.startswith(prefix) and pod_name[len(prefix):].isdigit():
            return int(pod_name[len(prefix):])
        return None

    def sync(self, key) -> None:
        ns, name = key
        entry = self.live(key)
        if entry is None:
            return
        sts = entry.obj
        spec, prev = sts["spec"], sts.get("status") or {}
        replicas = spec.get("replicas", 1)
        tpl = spec.get("template") or {}
        _, update_rev = self.revision(entry, tpl, (spec.get("selector") or {}).get("matchLabels") or {})
        current_rev = prev.get("currentRevision") or update_rev
        strategy = spec.get("updateStrategy") or {}
        rolling = strategy.get("type", "RollingUpdate") == "RollingUpdate"
        partition = ((strategy.get("rollingUpdate") or {}).get("partition") or 0) if rolling else replicas
        parallel = spec.get("podManagementPolicy") == "Parallel"
        pods = {}
        for p in self.owned_pods(sts):
            i = self.ordinal(name, p.name)
            if i is not None:
                pods[i] = p
        for i, p in list(pods.items()):  # a failed pod is replaced
            if (p.obj.get("status") or {}).get("phase") in ("Failed", "Succeeded") and self.delete_pod(
                    sts, p, f"Delete Pod {p.name} in StatefulSet {name} successful"):
                del pods[i]
        waiting = False
        for i in range(replicas):
            p = pods.get(i)
            if p is None:
                rev = current_rev if i < partition and current_rev != update_rev else update_rev
                rtpl = (self.revision_template(ns, rev) or tpl) if rev != update_rev else tpl
                pod_name = f"{name}-{i}"
                pod_spec = {"hostname": pod_name}
                if spec.get("serviceName"):
                    pod_spec["subdomain"] = spec["serviceName"]
                p = self.create_pod(sts, rtpl, pod_name, {REVISION_LABEL: rev, STS_POD_NAME: pod_name,
                                                          STS_POD_INDEX: str(i)}, pod_spec,
                                    event=f"Create Pod {pod_name} in StatefulSet {name} successful")
                if p is not None:
                    pods[i] = p
                if not parallel:
                    waiting = True
                    break
            elif not pod_is_ready(p.obj) and not parallel:
                waiting = True
                break
        condemned = sorted((i for i in pods if i >= replicas), reverse=True)
        if condemned and not (waiting and not parallel):
            for i in condemned if parallel else condemned[:1]:
                if self.delete_pod(sts, pods[i], f"Delete Pod {pods[i].name} in StatefulSet {name} successful"):
                    del pods[i]
        elif rolling and not condemned and all(i in pods and pod_is_ready(pods[i].obj) for i in range(replicas)):
            for i in range(replicas - 1, partition - 1, -1):
                if (pods[i].obj["metadata"].get("labels") or {}).get(REVISION_LABEL) != update_rev:
                    if self.delete_pod(sts, pods[i], f"Delete Pod {pods[i].name} in StatefulSet {name} successful"):
                        del pods[i]
                    break
        self._status(entry, pods, current_rev, update_rev)

    def _status(self, entry, pods: dict, current_rev: str, update_rev: str) -> None:
        sts = entry.obj
        now = time.time()
        min_ready = sts["spec"].get("minReadySeconds", 0) or 0
        revs = [(p.obj["metadata"].get("labels") or {}).get(REVISION_LABEL) for p in pods.values()]
        ready = sum(1 for p in pods.values() if pod_is_ready(p.obj))
        status = {"observedGeneration": sts["metadata"].get("generation", 1), "replicas": len(pods),
                  "readyReplicas": ready,
                  "currentReplicas": revs.count(current_rev), "updatedReplicas": revs.count(update_rev),
                  "currentRevision": current_rev, "updateRevision": update_rev, "collisionCount": 0,
                  "availableReplicas": sum(1 for p in pods.values() if available(p.obj, min_ready, now))}
        if status["updatedReplicas"] == status["replicas"] == ready:
            status["currentRevision"], status["currentReplicas"] = update_rev, status["updatedReplicas"]
        status = {k: v for k, v in status.items() if v not in (0, None) or k in ("replicas", "availableReplicas")}
        self.write_status(entry, status)
        if min_ready and status.get("availableReplicas", 0) < ready:
            self.enqueue_after((entry.ns, entry.name), min_ready / 2)


class ReplicationControllerController(ReplicaSetController):
    name = "replication-controller"
    rt = REPLICATIONCONTROLLERS


__all__ = ["DaemonSetController", "StatefulSetController", "ReplicationControllerController", "PodOwnerController"]
