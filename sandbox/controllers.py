"""Simulated control plane: deployment, replicaset, namespace, serviceaccount and
garbage-collector controllers, plus an event recorder.

Each controller is a work queue of keys fed by store listeners and drained by one
asyncio task, like a kube-controller-manager controller fed by informers: a write
never runs controller logic inline, so clients observe the same asynchrony (create
returns, the ReplicaSet appears a moment later) and a burst of writes is coalesced
(ten pod updates enqueue their ReplicaSet once).  Controllers read the store directly
(their "informer cache" is the store itself) and write through the registry, so the
same rules apply as for clients.

The deployment controller is a transcription of the upstream algorithm
(pkg/controller/deployment): pod-template-hash, NewRSNewReplicas for maxSurge,
reconcileOldReplicaSets/cleanupUnhealthyReplicas for maxUnavailable, Recreate, revision
annotations, calculateStatus and syncRolloutStatus with the Progressing/Available
conditions and progressDeadlineSeconds - because ``kubectl rollout status`` and MAE
both read exactly those fields.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import asyncio
import json
import logging
import time

from .registry import ApiError, Registry, micro_time, parse_time, rfc3339
from .resources import (DEPLOYMENTS, EVENTS, NAMESPACES, PODS, REPLICASETS, SERVICEACCOUNTS, TYPES,
                        int_or_percent)
from .store import ADDED, DELETED, MODIFIED, Store

log = logging.getLogger("sandbox.controllers")

REVISION = "deployment.kubernetes.io/revision"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def controller_ref(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(obj: dict, rt) -> dict:
    m = obj["metadata"]
    return {"apiVersion": rt.api_version, "kind": rt.kind, "name": m["name"], "uid": m["uid"],
            "controller": True, "blockOwnerDeletion": True}


def pod_is_ready(pod: dict) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_ready_since(pod: dict) -> float:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return 0.0


def pod_active(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def template_hash(template: dict, collision_count: int | None) -> str:
    """fnv32a over the canonical template, rendered with SafeEncodeString like upstream."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    if collision_count:
        for b in str(collision_count).encode():
            h ^= b
            h = (h * 0x01000193) & 0xFFFFFFFF
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in str(h))


def _without_hash(template: dict) -> dict:
    labels = dict(((template.get("metadata") or {}).get("labels") or {}))
    labels.pop(HASH_LABEL, None)
    meta = dict(template.get("metadata") or {})
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    out = dict(template)
    out["metadata"] = meta
    return out


def _omit_zero(status: dict) -> dict:
    # Go's omitempty: zero counters are not serialised, clients read them as 0/None.
    return {k: v for k, v in status.items() if v not in (0, None, [], {})}


class Pacer:
    """Keeps the simulated control plane from starving the API server.

    A real cluster runs the API server and the controllers in separate processes, and
    kube-controller-manager is rate-limited (client QPS), so a burst of client writes is
    answered at API speed and the controllers catch up afterwards.  Here everything
    shares one event loop, so while requests are arriving (one in the last
    ``busy_window`` seconds) all controller work together - controllers and the kubelet
    - is held to ``share`` of the time; when the API is idle they run flat out.
    """

    def __init__(self, share: float = 0.25, busy_window: float = 0.05):
        self.share = share
        self.busy_window = busy_window
        self.last_request = 0.0
        self.next_allowed = 0.0

    def api_hit(self) -> None:
        self.last_request = time.monotonic()

    def busy(self) -> bool:
        return time.monotonic() - self.last_request < self.busy_window

    async def turn(self) -> None:
        while True:
            now = time.monotonic()
            if now >= self.next_allowed or not self.busy():
                return
            await asyncio.sleep(self.next_allowed - now)

    def spent(self, seconds: float) -> None:
        if self.busy():
            self.next_allowed = max(self.next_allowed, time.monotonic()) + seconds * (1 - self.share) / self.share


PACER = Pacer()


class Controller(ABC):
    """A deduplicating work queue drained by one asyncio task."""

    name = "controller"
    slice = 0.003  # seconds of work before yielding to the event loop

    def __init__(self, registry: Registry, pacer: Pacer | None = None):
        self.registry = registry
        self.store: Store = registry.store
        self.queue: dict = {}
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.loop = asyncio.get_event_loop()
        self.pacer = pacer or PACER

    def enqueue(self, key) -> None:
        self.queue[key] = None
        self.wakeup.set()

    def enqueue_after(self, key, delay: float) -> None:
        self.loop.call_later(max(0.0, delay), self.enqueue, key)

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                await self.pacer.turn()
                start = time.perf_counter()
                while self.queue and time.perf_counter() - start < self.slice:
                    key = next(iter(self.queue))
                    del self.queue[key]
                    self.process(key)
                self.pacer.spent(time.perf_counter() - start)
                await asyncio.sleep(0)  # let API requests in between

    def process(self, key) -> None:
        try:
            self.sync(key)
        except ApiError as exc:
            # Lost a race (object changed or vanished under us): retry soon.
            log.debug("%s %s: %s", self.name, key, exc.message)
            self.enqueue_after(key, 0.05)
        except Exception:  # noqa: BLE001 - a controller must never die
            log.exception("%s failed on %s", self.name, key)
            self.enqueue_after(key, 1.0)

    @abstractmethod
    def sync(self, key) -> None:
        """Make the object at ``key`` what its spec asks for."""


class EventRecorder:
    """Writes core/v1 Events, aggregating repeats into ``count`` like client-go's recorder."""

    def __init__(self, registry: Registry, host: str):
        self.registry = registry
        self.host = host
        self.seen: dict[tuple, str] = {}

    def event(self, obj: dict, etype: str, reason: str, message: str, component: str,
              field_path: str | None = None, kind: str | None = None, api_version: str | None = None) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        key = (ns, meta["uid"], etype, reason, message, field_path, component)
        now = rfc3339()
        name = self.seen.get(key)
        if name is not None:
            existing = self.registry.store.get(EVENTS.key, ns, name)
            if existing is not None:
                ev = existing.shallow(count=existing.obj.get("count", 1) + 1, lastTimestamp=now)
                self.registry.write(EVENTS, ev, old=existing)
                return
        involved = {"kind": kind or obj.get("kind"), "namespace": meta.get("namespace"), "name": meta["name"],
                    "uid": meta["uid"], "apiVersion": api_version or obj.get("apiVersion"),
                    "resourceVersion": meta.get("resourceVersion")}
        if not involved["namespace"]:
            del involved["namespace"]
        if field_path:
            involved["fieldPath"] = field_path
        name = f"{meta['name']}.{time.time_ns():x}"
        source = {"component": component}
        if component == "kubelet":
            source["host"] = self.host
        ev = {"metadata": {"name": name, "namespace": ns}, "involvedObject": involved, "reason": reason,
              "message": message, "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
              "type": etype, "eventTime": None, "reportingComponent": component,
              "reportingInstance": self.host if component == "kubelet" else ""}
        try:
            self.registry.create(EVENTS, ns, ev, internal=True)
        except ApiError:
            return
        if len(self.seen) > 50_000:
            self.seen.clear()
        self.seen[key] = name


# ====================================================================== Deployment

def _cond(conds: list, ctype: str) -> dict | None:
    for c in conds:
        if c.get("type") == ctype:
            return c
    return None


def _set_cond(conds: list, ctype: str, status: str, reason: str, message: str) -> list:
    """SetDeploymentCondition: same status+reason keeps the old entry (timestamps)."""
    now = rfc3339()
    cur = _cond(conds, ctype)
    if cur is not None and cur.get("status") == status and cur.get("reason") == reason:
        return conds
    new = {"type": ctype, "status": status, "lastUpdateTime": now,
           "lastTransitionTime": cur["lastTransitionTime"] if (cur and cur.get("status") == status) else now,
           "reason": reason, "message": message}
    return [c for c in conds if c.get("type") != ctype] + [new]


class DeploymentController(Controller):
    name = "deployment-controller"

    def __init__(self, registry: Registry, recorder: EventRecorder):
        super().__init__(registry)
        self.recorder = recorder
        self.store.listeners.append(self.on_change)

    # -- triggers
    def on_change(self, res: str, etype: str, obj: dict, old: dict | None) -> None:
        if res == DEPLOYMENTS.key:
            if etype != DELETED:
                self.enqueue((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        elif res == REPLICASETS.key:
            ref = controller_ref(obj)
            if ref and ref.get("kind") == "Deployment":
                self.enqueue((obj["metadata"]["namespace"], ref["name"]))
        elif res == PODS.key and etype == DELETED:
            # Recreate waits for old pods to be gone.
            ref = controller_ref(obj)
            if ref and ref.get("kind") == "ReplicaSet":
                rs = self.store.get(REPLICASETS.key, obj["metadata"]["namespace"], ref["name"])
                dref = controller_ref(rs.obj) if rs else None
                if dref:
                    self.enqueue((obj["metadata"]["namespace"], dref["name"]))

    def resume(self) -> None:
        for e in self.store.iter(DEPLOYMENTS.key):
            self.enqueue((e.ns, e.name))

    # -- helpers
    def _owned_rs(self, d: dict) -> list:
        uid = d["metadata"]["uid"]
        out = []
        for e in self.store.dependents_of(uid):
            if e.res == REPLICASETS.key:
                ref = controller_ref(e.obj)
                if ref and ref.get("uid") == uid and not e.obj["metadata"].get("deletionTimestamp"):
                    out.append(e)
        out.sort(key=lambda e: (e.obj["metadata"]["creationTimestamp"], e.name))
        return out

    @staticmethod
    def _rev(rs: dict) -> int:
        try:
            return int((rs["metadata"].get("annotations") or {}).get(REVISION, "0"))
        except ValueError:
            return 0

    @staticmethod
    def _replicas(rs: dict) -> int:
        return (rs.get("spec") or {}).get("replicas", 0) or 0

    @staticmethod
    def _st(rs: dict, key: str) -> int:
        return (rs.get("status") or {}).get(key, 0) or 0

    def _surge_unavailable(self, d: dict) -> tuple[int, int]:
        spec = d["spec"]
        if (spec.get("strategy") or {}).get("type") != "RollingUpdate":
            return 0, 0
        ru = spec["strategy"].get("rollingUpdate") or {}
        desired = spec.get("replicas", 1)
        surge = int_or_percent(ru.get("maxSurge", "25%"), desired, True)
        unavail = int_or_percent(ru.get("maxUnavailable", "25%"), desired, False)
        if surge == 0 and unavail == 0:
            unavail = 1
        return surge, min(unavail, desired)

    def _scale(self, d: dict, rs_entry, replicas: int) -> bool:
        rs = rs_entry.obj
        surge, _ = self._surge_unavailable(d)
        desired = d["spec"].get("replicas", 1)
        ann = rs["metadata"].get("annotations") or {}
        cur = self._replicas(rs)
        if cur == replicas and ann.get(DESIRED) == str(desired) and ann.get(MAX_REPLICAS) == str(desired + surge):
            return False
        obj = rs_entry.copy()
        obj["spec"]["replicas"] = replicas
        a = obj["metadata"].setdefault("annotations", {})
        a[DESIRED] = str(desired)
        a[MAX_REPLICAS] = str(desired + surge)
        self.registry.write(REPLICASETS, obj, old=rs_entry)
        if cur != replicas:
            direction = "up" if replicas > cur else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {direction} replica set {rs['metadata']['name']} from {cur} to {replicas}",
                                self.name)
        return cur != replicas

    def _write_status(self, d_entry, status: dict, annotations: dict | None = None) -> None:
        obj = d_entry.shallow(status=status)
        if annotations is not None:
            obj["metadata"]["annotations"] = annotations
        self.registry.write_status(DEPLOYMENTS, obj, old=d_entry)

    def _new_rs(self, d_entry, rss: list, create: bool):
        """getNewReplicaSet: find (or create) the RS matching the current template."""
        d = d_entry.obj
        tpl = d["spec"]["template"]
        new = None
        for e in rss:
            if _without_hash(e.obj["spec"]["template"]) == tpl:
                new = e
                break
        old = [e for e in rss if e is not new]
        max_old = max((self._rev(e.obj) for e in old), default=0)
        new_revision = max_old + 1
        ns = d["metadata"]["namespace"]
        d_ann = dict(d["metadata"].get("annotations") or {})
        status = dict(d.get("status") or {})
        conds = list(status.get("conditions") or [])
        if new is not None:
            rev = self._rev(new.obj)
            if rev < new_revision:
                obj = new.copy()
                obj["metadata"].setdefault("annotations", {})[REVISION] = str(new_revision)
                new = self.registry.write(REPLICASETS, obj, old=new)
                rev = new_revision
            changed = False
            if d_ann.get(REVISION) != str(rev):
                d_ann[REVISION] = str(rev)
                changed = True
            if _cond(conds, "Progressing") is None and d["spec"].get("progressDeadlineSeconds") is not None:
                conds = _set_cond(conds, "Progressing", "True", "FoundNewReplicaSet",
                                  f'Found new replica set "{new.name}"')
                changed = True
            if changed:
                status["conditions"] = conds
                self._write_status(d_entry, status, d_ann)
            return new, old
        if not create:
            return None, old
        h = template_hash(tpl, status.get("collisionCount"))
        new_tpl = json.loads(json.dumps(tpl))
        new_tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        sel = json.loads(json.dumps(d["spec"]["selector"]))
        sel.setdefault("matchLabels", {})[HASH_LABEL] = h
        desired = d["spec"].get("replicas", 1)
        surge, _ = self._surge_unavailable(d)
        rs_ann = {k: v for k, v in d_ann.items() if k not in (LAST_APPLIED, REVISION)}
        rs_ann.update({DESIRED: str(desired), MAX_REPLICAS: str(desired + surge), REVISION: str(new_revision)})
        if (d["spec"].get("strategy") or {}).get("type") == "Recreate":
            replicas = desired
        else:
            total = sum(self._replicas(e.obj) for e in old)
            replicas = max(0, min(desired + surge - total, desired)) if total < desired + surge else 0
            if not old:
                replicas = desired
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": ns,
                           "labels": dict(new_tpl["metadata"]["labels"]), "annotations": rs_ann,
                           "ownerReferences": [owner_ref(d, DEPLOYMENTS)]},
              "spec": {"replicas": replicas, "selector": sel, "template": new_tpl}}
        if d["spec"].get("minReadySeconds"):
            rs["spec"]["minReadySeconds"] = d["spec"]["minReadySeconds"]
        try:
            new = self.registry.create(REPLICASETS, ns, rs, internal=True)
        except ApiError as exc:
            if exc.code != 409:
                raise
            # Hash collision with an RS we do not own or with a different template:
            # bump collisionCount and retry, as upstream does.
            status["collisionCount"] = (status.get("collisionCount") or 0) + 1
            self._write_status(d_entry, status)
            return None, old
        if replicas > 0:
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {new.name} from 0 to {replicas}", self.name)
        d_ann[REVISION] = str(new_revision)
        if d["spec"].get("progressDeadlineSeconds") is not None:
            conds = _set_cond([c for c in conds if c.get("type") != "Progressing"], "Progressing", "True",
                              "NewReplicaSetCreated", f'Created new replica set "{new.name}"')
        status["conditions"] = conds
        self._write_status(d_entry, status, d_ann)
        return new, old

    # -- sync
    def sync(self, key) -> None:
        ns, name = key
        d_entry = self.store.get(DEPLOYMENTS.key, ns, name)
        if d_entry is None or d_entry.obj["metadata"].get("deletionTimestamp"):
            return
        d = d_entry.obj
        rss = self._owned_rs(d)
        strategy = (d["spec"].get("strategy") or {}).get("type", "RollingUpdate")
        if d["spec"].get("paused"):
            new, old = self._new_rs(d_entry, rss, create=False)
            self._sync_status(ns, name, new, old)
            return
        if strategy == "Recreate":
            self._recreate(ns, name, rss)
        else:
            self._rolling(ns, name, rss)

    def _fresh(self, ns: str, name: str):
        return self.store.get(DEPLOYMENTS.key, ns, name)

    def _rolling(self, ns: str, name: str, rss: list) -> None:
        d_entry = self._fresh(ns, name)
        new, old = self._new_rs(d_entry, rss, create=True)
        d_entry = self._fresh(ns, name)
        d = d_entry.obj
        if new is None:
            self.enqueue((ns, name))
            return
        new = self.store.get(REPLICASETS.key, ns, new.name)
        old = [self.store.get(REPLICASETS.key, ns, e.name) or e for e in old]
        desired = d["spec"].get("replicas", 1)
        surge, max_unavail = self._surge_unavailable(d)
        all_rs = [new] + old
        # reconcileNewReplicaSet
        new_replicas = self._replicas(new.obj)
        if new_replicas > desired:
            self._scale(d, new, desired)
            self._sync_status(ns, name, new, old)
            return
        if new_replicas < desired:
            total = sum(self._replicas(e.obj) for e in all_rs)
            max_total = desired + surge
            if total < max_total:
                target = new_replicas + min(max_total - total, desired - new_replicas)
                if self._scale(d, new, target):
                    self._sync_status(ns, name, new, old)
                    return
        else:
            self._scale(d, new, desired)  # keep annotations in step with scaling
        new = self.store.get(REPLICASETS.key, ns, new.name)
        # reconcileOldReplicaSets
        old_total = sum(self._replicas(e.obj) for e in old)
        if old_total > 0:
            all_total = sum(self._replicas(e.obj) for e in [new] + old)
            min_available = desired - max_unavail
            new_unavailable = self._replicas(new.obj) - self._st(new.obj, "availableReplicas")
            max_scaled_down = all_total - min_available - new_unavailable
            scaled = False
            if max_scaled_down > 0:
                # cleanupUnhealthyReplicas: old pods that are not available go first.
                remaining = max_scaled_down
                for e in old:
                    if remaining <= 0:
                        break
                    rs = self.store.get(REPLICASETS.key, ns, e.name) or e
                    cur = self._replicas(rs.obj)
                    unhealthy = cur - self._st(rs.obj, "availableReplicas")
                    if cur == 0 or unhealthy <= 0:
                        continue
                    down = min(remaining, unhealthy)
                    self._scale(d, rs, cur - down)
                    remaining -= down
                    scaled = True
                # scaleDownOldReplicaSetsForRollingUpdate
                old = [self.store.get(REPLICASETS.key, ns, e.name) or e for e in old]
                available = sum(self._st(e.obj, "availableReplicas") for e in [new] + old)
                if available > min_available:
                    budget = min(available - min_available, remaining)
                    for e in old:
                        if budget <= 0:
                            break
                        cur = self._replicas(e.obj)
                        if cur == 0:
                            continue
                        down = min(cur, budget)
                        self._scale(d, e, cur - down)
                        budget -= down
                        scaled = True
            if scaled:
                old = [self.store.get(REPLICASETS.key, ns, e.name) or e for e in old]
                self._sync_status(ns, name, new, old)
                return
        self._sync_status(ns, name, new, old)

    def _recreate(self, ns: str, name: str, rss: list) -> None:
        d_entry = self._fresh(ns, name)
        new, old = self._new_rs(d_entry, rss, create=False)
        d = self._fresh(ns, name).obj
        scaled = False
        for e in old:
            if self._replicas(e.obj) > 0:
                self._scale(d, e, 0)
                scaled = True
        old = [self.store.get(REPLICASETS.key, ns, e.name) or e for e in old]
        if scaled:
            self._sync_status(ns, name, new, old)
            return
        for e in old:
            for p in self.store.dependents_of(e.obj["metadata"]["uid"]):
                if p.res == PODS.key and (p.obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    self._sync_status(ns, name, new, old)
                    return  # old pods still running: wait for them to go
        if new is None:
            new, old = self._new_rs(self._fresh(ns, name), rss, create=True)
            if new is None:
                self.enqueue((ns, name))
                return
        d = self._fresh(ns, name).obj
        self._scale(d, self.store.get(REPLICASETS.key, ns, new.name) or new, d["spec"].get("replicas", 1))
        self._sync_status(ns, name, self.store.get(REPLICASETS.key, ns, new.name), old)

    def _cleanup(self, d: dict, old: list) -> None:
        limit = d["spec"].get("revisionHistoryLimit", 10)
        if limit is None:
            return
        dead = [e for e in old if self._replicas(e.obj) == 0 and self._st(e.obj, "replicas") == 0]
        dead.sort(key=lambda e: self._rev(e.obj))
        for e in dead[: max(0, len(dead) - limit)]:
            try:
                self.registry.delete(REPLICASETS, e.ns, e.name)
            except ApiError:
                pass

    def _sync_status(self, ns: str, name: str, new, old: list) -> None:
        d_entry = self._fresh(ns, name)
        if d_entry is None:
            return
        d = d_entry.obj
        old = [self.store.get(REPLICASETS.key, ns, e.name) for e in old]
        old = [e for e in old if e is not None]
        if new is not None:
            new = self.store.get(REPLICASETS.key, ns, new.name)
        all_rs = ([new] if new is not None else []) + old
        desired = d["spec"].get("replicas", 1)
        _, max_unavail = self._surge_unavailable(d)
        prev = d.get("status") or {}
        available = sum(self._st(e.obj, "availableReplicas") for e in all_rs)
        total_spec = sum(self._replicas(e.obj) for e in all_rs)
        status = {
            "observedGeneration": d["metadata"].get("generation", 1),
            "replicas": sum(self._st(e.obj, "replicas") for e in all_rs),
            "updatedReplicas": self._st(new.obj, "replicas") if new is not None else 0,
            "readyReplicas": sum(self._st(e.obj, "readyReplicas") for e in all_rs),
            "availableReplicas": available,
            "unavailableReplicas": max(0, total_spec - available),
        }
        conds = list(prev.get("conditions") or [])
        if available >= desired - max_unavail:
            conds = _set_cond(conds, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        else:
            conds = _set_cond(conds, "Available", "False", "MinimumReplicasUnavailable",
                              "Deployment does not have minimum availability.")
        pds = d["spec"].get("progressDeadlineSeconds")
        if pds is None:
            conds = [c for c in conds if c.get("type") != "Progressing"]
        cur = _cond(conds, "Progressing")
        complete_rollout = status["replicas"] == status["updatedReplicas"] and cur is not None and \
            cur.get("reason") == "NewReplicaSetAvailable"
        requeue = None
        if pds is not None and not complete_rollout:
            rs_name = new.name if new is not None else None
            if (status["updatedReplicas"] == desired and status["replicas"] == desired
                    and available == desired and status["observedGeneration"] >= d["metadata"].get("generation", 1)):
                msg = f'ReplicaSet "{rs_name}" has successfully progressed.' if rs_name else \
                    f'Deployment "{name}" has successfully progressed.'
                conds = _set_cond(conds, "Progressing", "True", "NewReplicaSetAvailable", msg)
            elif (status["updatedReplicas"] > prev.get("updatedReplicas", 0)
                  or (status["replicas"] - status["updatedReplicas"]) < (prev.get("replicas", 0) - prev.get("updatedReplicas", 0))
                  or status["readyReplicas"] > prev.get("readyReplicas", 0)
                  or available > prev.get("availableReplicas", 0)):
                msg = f'ReplicaSet "{rs_name}" is progressing.' if rs_name else f'Deployment "{name}" is progressing.'
                now = rfc3339()
                ltt = cur["lastTransitionTime"] if (cur and cur.get("status") == "True") else now
                conds = [c for c in conds if c.get("type") != "Progressing"] + [
                    {"type": "Progressing", "status": "True", "lastUpdateTime": now, "lastTransitionTime": ltt,
                     "reason": "ReplicaSetUpdated", "message": msg}]
                requeue = pds
            elif cur is not None and cur.get("reason") != "ProgressDeadlineExceeded":
                deadline = parse_time(cur.get("lastUpdateTime")) + pds
                if time.time() > deadline:
                    msg = f'ReplicaSet "{rs_name}" has timed out progressing.' if rs_name else \
                        f'Deployment "{name}" has timed out progressing.'
                    conds = _set_cond(conds, "Progressing", "False", "ProgressDeadlineExceeded", msg)
                else:
                    requeue = deadline - time.time() + 0.05
        # The ReplicaSets' ReplicaFailure (the new one's first) becomes the Deployment's,
        # as the real controller's getReplicaFailures does; gone when theirs is gone.
        failure = None
        for rs_entry in all_rs:
            failure = _cond((rs_entry.obj.get("status") or {}).get("conditions") or [], "ReplicaFailure")
            if failure is not None:
                break
        mine = _cond(conds, "ReplicaFailure")
        if failure is None:
            conds = [c for c in conds if c.get("type") != "ReplicaFailure"]
        elif mine is None or (mine.get("status"), mine.get("reason"), mine.get("message")) != (
                failure.get("status"), failure.get("reason"), failure.get("message")):
            ts = failure.get("lastTransitionTime") or rfc3339()
            conds = [c for c in conds if c.get("type") != "ReplicaFailure"] + [
                {"type": "ReplicaFailure", "status": failure.get("status", "True"), "lastUpdateTime": ts,
                 "lastTransitionTime": ts, "reason": failure.get("reason"), "message": failure.get("message")}]
        if prev.get("collisionCount"):
            status["collisionCount"] = prev["collisionCount"]
        status = _omit_zero(status)
        status["conditions"] = conds
        if status != prev:
            self._write_status(d_entry, status, d["metadata"].get("annotations"))
        if requeue is not None:
            self.enqueue_after((ns, name), requeue)
        if status.get("conditions") and _cond(conds, "Progressing") and \
                _cond(conds, "Progressing").get("reason") == "NewReplicaSetAvailable":
            self._cleanup(d, old)


# ====================================================================== ReplicaSet

class OwnerController(Controller):
    """Runs the objects of ``rt``, which control objects of ``child``: a change of either
    enqueues the owner (workloads.py and jobs.py build on this too)."""

    rt = REPLICASETS
    child = PODS

    def __init__(self, registry: Registry, recorder: EventRecorder):
        super().__init__(registry)
        self.recorder = recorder
        self.store.listeners.append(self.on_change)

    def on_change(self, res: str, etype: str, obj: dict, old: dict | None) -> None:
        if res == self.rt.key:
            if etype != DELETED:
                self.enqueue((obj["metadata"]["namespace"], obj["metadata"]["name"]))
        elif res == self.child.key:
            ref = controller_ref(obj)
            if ref and ref.get("kind") == self.rt.kind:
                self.enqueue((obj["metadata"]["namespace"], ref["name"]))

    def resume(self) -> None:
        for e in self.store.iter(self.rt.key):
            self.enqueue((e.ns, e.name))

    def live(self, key):
        """The object at ``key`` unless it is gone or being deleted."""
        e = self.store.get(self.rt.key, *key)
        return None if e is None or e.obj["metadata"].get("deletionTimestamp") else e


class ReplicaSetController(OwnerController):
    name = "replicaset-controller"
    rt = REPLICASETS  # ReplicationControllerController (workloads.py) runs v1 ReplicationControllers
    burst = 500
    retry_after = 1.0  # seconds before a refused pod creation is tried again

    def __init__(self, registry: Registry, recorder: EventRecorder):
        super().__init__(registry, recorder)
        self.failures: dict = {}  # (ns, name) → refused creations in a row: the retry back-off

    @staticmethod
    def _rank(p) -> tuple:
        """ActivePods ordering: the first ones are deleted first."""
        st = p.obj.get("status") or {}
        phase_rank = {"Pending": 0, "Unknown": 1, "Running": 2}.get(st.get("phase"), 0)
        restarts = sum(c.get("restartCount", 0) for c in st.get("containerStatuses") or [])
        return (1 if p.obj["spec"].get("nodeName") else 0, phase_rank, 1 if pod_is_ready(p.obj) else 0,
                -restarts, _neg_time(p.obj["metadata"].get("creationTimestamp")))

    def sync(self, key) -> None:
        ns, name = key
        rs_entry = self.store.get(self.rt.key, ns, name)
        if rs_entry is None:
            return
        rs = rs_entry.obj
        uid = rs["metadata"]["uid"]
        pods = [p for p in self.store.dependents_of(uid)
                if p.res == PODS.key and (controller_ref(p.obj) or {}).get("uid") == uid]
        active = [p for p in pods if pod_active(p.obj)]
        want = (rs.get("spec") or {}).get("replicas", 1)
        manage_error = None  # the API server's refusal of a pod (admission, quota): FailedCreate
        if not rs["metadata"].get("deletionTimestamp"):
            diff = len(active) - want
            if diff < 0:
                tpl = rs["spec"].get("template") or {}
                for _ in range(min(-diff, self.burst)):
                    pod = {"apiVersion": "v1", "kind": "Pod",
                           "metadata": {"generateName": f"{name}-", "namespace": ns,
                                        "labels": dict((tpl.get("metadata") or {}).get("labels") or {}),
                                        "ownerReferences": [owner_ref(rs, self.rt)]},
                           "spec": json.loads(json.dumps(tpl.get("spec") or {}))}
                    ann = (tpl.get("metadata") or {}).get("annotations")
                    if ann:
                        pod["metadata"]["annotations"] = dict(ann)
                    try:
                        p = self.registry.create(PODS, ns, pod, internal=True)
                    except ApiError as exc:
                        # Like the real controller's slow start: stop at the first refusal,
                        # say so in an event and the ReplicaFailure condition, retry later.
                        manage_error = exc.message
                        self.recorder.event(rs, "Warning", "FailedCreate", f"Error creating: {exc.message}",
                                            self.name)
                        failures = self.failures[key] = self.failures.get(key, 0) + 1
                        self.enqueue_after(key, min(self.retry_after * 2 ** (failures - 1), 30.0))
                        break
                    active.append(p)
                    self.recorder.event(rs, "Normal", "SuccessfulCreate", f"Created pod: {p.name}", self.name)
                if -diff > self.burst:
                    self.enqueue(key)
            elif diff > 0:
                victims = sorted(active, key=self._rank)[:diff]
                for p in victims:
                    try:
                        self.registry.delete(PODS, ns, p.name)
                    except ApiError:
                        continue
                    active.remove(p)
                    self.recorder.event(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p.name}", self.name)
        rs_entry = self.store.get(self.rt.key, ns, name)
        if rs_entry is None:
            return
        rs = rs_entry.obj
        min_ready = (rs.get("spec") or {}).get("minReadySeconds", 0) or 0
        tpl_labels = ((rs["spec"].get("template") or {}).get("metadata") or {}).get("labels") or {}
        now = time.time()
        ready = available = labeled = 0
        requeue = None
        for p in active:
            labels = p.obj["metadata"].get("labels") or {}
            if all(labels.get(k) == v for k, v in tpl_labels.items()):
                labeled += 1
            if pod_is_ready(p.obj):
                ready += 1
                since = pod_ready_since(p.obj)
                if min_ready <= 0 or since + min_ready <= now:
                    available += 1
                else:
                    left = since + min_ready - now
                    requeue = left if requeue is None else min(requeue, left)
        status = _omit_zero({"fullyLabeledReplicas": labeled, "readyReplicas": ready,
                             "availableReplicas": available,
                             "observedGeneration": rs["metadata"].get("generation", 1)})
        status["replicas"] = len(active)
        if manage_error is None:
            self.failures.pop(key, None)
        prev = rs.get("status") or {}
        conds = list(prev.get("conditions") or [])
        failure = _cond(conds, "ReplicaFailure")
        if manage_error is not None and failure is None:
            conds.append({"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(),
                          "reason": "FailedCreate", "message": manage_error})
        elif manage_error is None and failure is not None:
            conds = [c for c in conds if c.get("type") != "ReplicaFailure"]
        if conds:
            status["conditions"] = conds
        if status != prev:
            self.registry.write_status(self.rt, rs_entry.shallow(status=status), old=rs_entry)
        if requeue is not None:
            self.enqueue_after(key, requeue + 0.02)


def _neg_time(ts: str | None) -> float:
    return -parse_time(ts) if ts else 0.0


# ====================================================================== GC, namespaces

class GarbageCollector(Controller):
    """Deletes dependents whose owners are all gone (background propagation)."""

    name = "garbage-collector"

    def __init__(self, registry: Registry):
        super().__init__(registry)
        registry.on_removed.append(lambda rt, e: self.enqueue(("owner", e.obj["metadata"]["uid"])))
        self.store.listeners.append(self.on_change)

    def on_change(self, res: str, etype: str, obj: dict, old: dict | None) -> None:
        if etype == ADDED and obj["metadata"].get("ownerReferences"):
            for ref in obj["metadata"]["ownerReferences"]:
                if ref.get("uid") not in self.store.by_uid:
                    self.enqueue(("owner", ref.get("uid")))

    def resume(self) -> None:
        for uid in list(self.store.dependents):
            if uid not in self.store.by_uid:
                self.enqueue(("owner", uid))

    def sync(self, key) -> None:
        _, uid = key
        if uid in self.store.by_uid:
            return
        for dep in self.store.dependents_of(uid):
            refs = dep.obj["metadata"].get("ownerReferences") or []
            alive = [r for r in refs if r.get("uid") in self.store.by_uid]
            rt = TYPE_BY_KEY[dep.res]
            if alive:
                obj = dep.copy()
                obj["metadata"]["ownerReferences"] = alive
                self.registry.write(rt, obj, old=dep)
            elif not dep.obj["metadata"].get("deletionTimestamp"):
                try:
                    self.registry.delete(rt, dep.ns, dep.name, {"propagationPolicy": "Background"})
                except ApiError as exc:
                    if exc.code != 404:
                        raise


TYPE_BY_KEY = {t.key: t for t in TYPES if not t.storage}
STORED = list(TYPE_BY_KEY.values())  # views (events.k8s.io Events) hold no objects of their own


class NamespaceController(Controller):
    """Empties terminating namespaces, then drops the ``kubernetes`` finalizer; also
    creates the ``default`` ServiceAccount in new namespaces (the SA controller's job)."""

    name = "namespace-controller"

    def __init__(self, registry: Registry):
        super().__init__(registry)
        self.store.listeners.append(self.on_change)

    def on_change(self, res: str, etype: str, obj: dict, old: dict | None) -> None:
        if res == NAMESPACES.key:
            if etype != DELETED:
                self.enqueue(obj["metadata"]["name"])
        elif etype == DELETED:
            ns = obj["metadata"].get("namespace")
            if ns:
                nse = self.store.get(NAMESPACES.key, "", ns)
                if nse is not None and nse.obj["metadata"].get("deletionTimestamp"):
                    self.enqueue(ns)

    def resume(self) -> None:
        for e in self.store.iter(NAMESPACES.key):
            self.enqueue(e.name)

    def sync(self, ns: str) -> None:
        nse = self.store.get(NAMESPACES.key, "", ns)
        if nse is None:
            return
        if not nse.obj["metadata"].get("deletionTimestamp"):
            if nse.obj.get("status", {}).get("phase") == "Active" and \
                    self.store.get(SERVICEACCOUNTS.key, ns, "default") is None:
                try:
                    self.registry.create(SERVICEACCOUNTS, ns, {"metadata": {"name": "default"}}, internal=True)
                except ApiError:
                    pass
            return
        left = 0
        for rt in STORED:
            if not rt.namespaced:
                continue
            for e in list(self.store.iter(rt.key, ns)):
                left += 1
                if e.obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    self.registry.delete(rt, ns, e.name, {"propagationPolicy": "Background"})
                except ApiError:
                    pass
        remaining = sum(self.store.count(rt.key, ns) for rt in STORED if rt.namespaced)
        if remaining:
            return  # re-enqueued by the DELETED events of what is left
        obj = nse.copy()
        obj["spec"]["finalizers"] = []
        self.registry.write(NAMESPACES, obj, old=nse)


class EventReaper(Controller):
    """Drops events older than the API server's default event TTL (1h)."""

    name = "event-ttl"
    ttl = 3600.0

    def sync(self, key) -> None:
        cutoff = time.time() - self.ttl
        for e in list(self.store.iter(EVENTS.key)):
            if parse_time(e.obj.get("lastTimestamp")) < cutoff:
                try:
                    self.registry.delete(EVENTS, e.ns, e.name)
                except ApiError:
                    pass
        self.enqueue_after("sweep", 60.0)


__all__ = ["DeploymentController", "ReplicaSetController", "GarbageCollector", "NamespaceController",
           "EventRecorder", "EventReaper", "micro_time", "MODIFIED"]
