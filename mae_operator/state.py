"""What the operator has seen, and which Deployments changed since the last flush.

Written by the watcher threads, read by the sender: one lock. Every object is
mapped to the Deployment it belongs to (a ReplicaSet by its owner reference, a
Pod by its ReplicaSet), and that Deployment is marked dirty with the highest
resourceVersion seen for it — deletions included, so the reported version only
grows (MAE drops reports that are not newer). The three watch streams are not
ordered with each other, so each report also carries the highest version seen per
stream (``versions``): a fresh Deployment that arrives after a Pod event of a higher
version then still sorts after the stale report sent before it (shared/reportorder.py).
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from mae_operator import reports
from mae_operator.cluster_events import Warnings
from mae_operator.reports import meta, owner, rv_of

KINDS = ("Deployment", "ReplicaSet", "Pod")
# What the watchers watch: MAE's objects, and Warning events (cluster_events.py).
WATCHED = KINDS + ("Event",)


def _key(obj: dict) -> tuple[str, str]:
    m = meta(obj)
    return m.get("namespace") or "", m.get("name") or ""


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.objects: dict[str, dict[tuple, dict]] = {k: {} for k in KINDS}
        self.seen_rv: dict[tuple, int] = {}
        # Per Deployment, the highest resourceVersion seen in each kind's stream.
        self.seen_parts: dict[tuple, dict[str, int]] = {}
        self.dirty: set[tuple] = set()
        self.gone: dict[tuple, dict] = {}  # Deployments deleted, not yet reported
        # After a full list of Deployments: (list resourceVersion, every (namespace, name) in it).
        # A restarted operator has no memory of what it reported before, so it cannot tell
        # MAE "this one is gone"; instead it tells MAE everything that exists, and MAE marks
        # what it holds beyond that as deleted (docs/contracts.md, "full_state").
        self.full_state: tuple[int, list[tuple]] | None = None
        self.warnings = Warnings()

    def _deployment_of(self, kind: str, obj: dict) -> tuple | None:
        ns, name = _key(obj)
        if kind == "Deployment":
            return ns, name
        if kind == "ReplicaSet":
            dep = owner(obj, "Deployment")
            return (ns, dep) if dep else None
        rs_name = owner(obj, "ReplicaSet")
        if not rs_name:
            return None
        rs = self.objects["ReplicaSet"].get((ns, rs_name))
        if rs is not None:
            dep = owner(rs, "Deployment")
            return (ns, dep) if dep else None
        # The ReplicaSet not seen yet: its name is the Deployment's plus "-<pod-template-hash>".
        hash_ = (meta(obj).get("labels") or {}).get("pod-template-hash")
        if hash_ and rs_name.endswith("-" + hash_):
            return ns, rs_name[: -len(hash_) - 1]
        return None

    def _touch(self, dep_key: tuple | None, rv: int, kind: str) -> None:
        if dep_key is None:
            return
        self.seen_rv[dep_key] = max(self.seen_rv.get(dep_key, 0), rv)
        parts = self.seen_parts.setdefault(dep_key, {})
        parts[kind] = max(parts.get(kind, 0), rv)
        self.dirty.add(dep_key)

    def versions(self, dep_key: tuple) -> dict:
        parts = self.seen_parts.get(dep_key, {})
        return {"deployment": parts.get("Deployment", 0), "replicasets": parts.get("ReplicaSet", 0),
                "pods": parts.get("Pod", 0)}

    def event(self, kind: str, type_: str, obj: dict) -> None:
        with self.lock:
            if kind == "Event":
                self._warning(type_, obj)
                return
            key, rv = _key(obj), rv_of(obj)
            dep_key = self._deployment_of(kind, obj)
            if type_ == "DELETED":
                old = self.objects[kind].pop(key, None)
                if kind == "Deployment":
                    self.gone[key] = obj if obj.get("metadata") else (old or obj)
            else:
                self.objects[kind][key] = obj
                if kind == "Deployment":
                    self.gone.pop(key, None)
            self._touch(dep_key, rv, kind)
            self.changed.notify_all()

    def relisted(self, kind: str, items: list[dict], list_rv: int) -> None:
        """A fresh list replaces what we had: vanished objects count as deleted, and
        everything is dirty (a restart re-sends all).

        A list is the kind's state as of the list's resourceVersion, so every Deployment
        it touches is marked at that version in the kind's stream. The three kinds are
        listed one after another: a Deployment still cached from before an API server
        restart gets the Pod list's version too, but its own stream's version stays
        old, and the Deployment list that follows at the same version raises it, so the
        fresh report sorts after the stale one (shared/reportorder.py; before the
        per-stream versions the fault suite saw the fresh one dropped as a duplicate).
        Marking at the list's version also lets a restarted operator's reports sort
        after everything its predecessor sent — including a report stamped with the
        version of a pod deleted since, which the objects' own versions never reach."""
        with self.lock:
            if kind == "Event":
                for obj in items:
                    self._warning("ADDED", obj)
                return
            fresh = {_key(o): o for o in items}
            for key, old in list(self.objects[kind].items()):
                if key not in fresh:
                    if kind == "Deployment":
                        self.gone[key] = old
                    # A vanished Deployment is reported deleted at the list's version.
                    self._touch(self._deployment_of(kind, old), list_rv, kind)
            self.objects[kind] = fresh
            if kind == "Deployment":
                self.full_state = (list_rv, sorted(fresh))
            for obj in items:
                self._touch(self._deployment_of(kind, obj), max(list_rv, rv_of(obj)), kind)
            self.changed.notify_all()

    def _warning(self, type_: str, event: dict) -> None:
        """A Warning event: kept if it is about a MAE object and new, and that object's
        Deployment reported again (at the event's version, so the report is newer)."""
        if type_ == "DELETED":
            return  # an event expiring changes nothing we report
        key = self.warnings.add(event)
        if key is None:
            return
        namespace, kind, name = key
        obj = self.objects[kind].get((namespace, name))
        if obj is not None:
            self._touch(self._deployment_of(kind, obj), rv_of(event), "Event")
            self.changed.notify_all()

    def take(self) -> list[dict]:
        """Reports for every Deployment that changed since the last call."""
        with self.lock:
            keys, self.dirty = self.dirty, set()
            observed = now_rfc3339()
            out = []
            for key in sorted(keys):
                rv = self.seen_rv.get(key, 0)
                dep = self.objects["Deployment"].get(key)
                if dep is None:
                    gone = self.gone.pop(key, None)
                    if gone is not None and meta(gone).get("uid"):
                        out.append(reports.deleted_report(gone, rv, observed, self.versions(key)))
                    continue
                owned = [rs for (ns, _), rs in self.objects["ReplicaSet"].items()
                         if ns == key[0] and owner(rs, "Deployment") == key[1]]
                rs_names = {meta(rs).get("name") for rs in owned}
                pods = [p for (ns, _), p in self.objects["Pod"].items()
                        if ns == key[0] and (owner(p, "ReplicaSet") in rs_names
                                             or self._deployment_of("Pod", p) == key)]
                seen = [("Deployment", key[1])] + [("ReplicaSet", n) for n in rs_names] + \
                    [("Pod", meta(p).get("name")) for p in pods]
                out.append(reports.deployment_report(dep, pods, rv, observed, self.warnings.of(key[0], seen),
                                                     old_replicasets=reports.old_replicasets(dep, owned),
                                                     versions=self.versions(key)))
            return out

    def take_full_state(self) -> dict | None:
        """The pending full-state marker (once), in the shape of the reports body's ``full_state``."""
        with self.lock:
            pending, self.full_state = self.full_state, None
        if pending is None:
            return None
        rv, keys = pending
        return {"resource_version": str(rv), "deployments": [{"namespace": ns, "name": n} for ns, n in keys]}

    def wait_dirty(self, timeout: float) -> bool:
        with self.lock:
            if not self.dirty:
                self.changed.wait(timeout)
            return bool(self.dirty)
