"""Warning events about MAE's objects, kept to go out with their Deployment's report.

The operator watches Warning events cluster-wide (``type=Warning``: an event cannot be
selected by its object's labels). Each is kept by the object it is about — a
Deployment, ReplicaSet or Pod — as ``{"type", "reason", "message", "object"}``
(docs/contracts.md, a report's ``events``); a repeat of the same words (the cluster
counts repeats in one event) is not news. Bounded: a few per object, a few thousand
objects, oldest forgotten first. Pure bookkeeping; ``State`` holds the lock.
"""
from __future__ import annotations

from collections import OrderedDict

OBJECT_KINDS = ("Deployment", "ReplicaSet", "Pod")
PER_OBJECT = 5
MAX_OBJECTS = 5000
MAX_MESSAGE = 500


def summary(event: dict) -> tuple[tuple, dict] | None:
    """``((namespace, kind, name), report event)`` of a Warning event about a kind MAE reports, else None."""
    involved = event.get("involvedObject") or {}
    kind, name = involved.get("kind"), involved.get("name")
    namespace = involved.get("namespace") or (event.get("metadata") or {}).get("namespace")
    if event.get("type") != "Warning" or kind not in OBJECT_KINDS or not name or not namespace:
        return None
    return (namespace, kind, name), {"type": "Warning", "reason": event.get("reason"),
                                     "message": (event.get("message") or "")[:MAX_MESSAGE],
                                     "object": f"{kind}/{name}"}


class Warnings:
    def __init__(self):
        self.by_object: OrderedDict[tuple, list[tuple[int, dict]]] = OrderedDict()
        self.seq = 0

    def add(self, event: dict) -> tuple | None:
        """Keep a Warning event; its object's key if it says something new, else None."""
        found = summary(event)
        if found is None:
            return None
        key, item = found
        kept = self.by_object.setdefault(key, [])
        self.by_object.move_to_end(key)
        if any(old == item for _, old in kept):
            return None
        self.seq += 1
        kept.append((self.seq, item))
        del kept[:-PER_OBJECT]
        while len(self.by_object) > MAX_OBJECTS:
            self.by_object.popitem(last=False)
        return key

    def of(self, namespace: str, objects: list[tuple[str, str]]) -> list[dict]:
        """The kept events of these (kind, name) objects, oldest first."""
        found = [entry for kind, name in objects for entry in self.by_object.get((namespace, kind, name), ())]
        return [item for _, item in sorted(found, key=lambda e: e[0])]
