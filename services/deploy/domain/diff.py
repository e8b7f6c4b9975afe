"""How what a deploy would apply differs from what a cluster runs now.

The live object carries much that nobody wrote (status, uid, defaults the API
server fills in such as ``strategy`` or ``terminationMessagePath``). Comparing
it whole would show noise on every line, so the live object is first cut down
to the fields the desired manifest sets (recursively; list items by position),
which is also what an apply changes. The answer per object is a structured
list of changes (path, before, after) and a unified diff of the two as YAML.
"""
from __future__ import annotations

import difflib

import yaml

SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                   "selfLink", "ownerReferences", "finalizers", "deletionTimestamp")


def project(live, desired):
    """``live`` restricted to the shape of ``desired``."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {k: project(live[k], v) for k, v in desired.items() if k in live}
    if isinstance(desired, list) and isinstance(live, list):
        return [project(live[i], desired[i]) if i < len(desired) else live[i] for i in range(len(live))]
    return live


def _clean_live(live: dict) -> dict:
    live = {k: v for k, v in live.items() if k != "status"}
    meta = dict(live.get("metadata") or {})
    for key in SERVER_METADATA:
        meta.pop(key, None)
    live["metadata"] = meta
    return live


def changes(before, after, path: str = "") -> list[dict]:
    """Leaf-level differences: ``{"path", "op": "added"|"removed"|"changed", "before", "after"}``."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                out.append({"path": sub, "op": "added", "before": None, "after": after[key]})
            elif key not in after:
                out.append({"path": sub, "op": "removed", "before": before[key], "after": None})
            else:
                out.extend(changes(before[key], after[key], sub))
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for i in range(max(len(before), len(after))):
            sub = f"{path}[{i}]"
            if i >= len(before):
                out.append({"path": sub, "op": "added", "before": None, "after": after[i]})
            elif i >= len(after):
                out.append({"path": sub, "op": "removed", "before": before[i], "after": None})
            else:
                out.extend(changes(before[i], after[i], sub))
        return out
    if before != after:
        return [{"path": path, "op": "changed", "before": before, "after": after}]
    return []


def _yaml(obj) -> list[str]:
    if obj is None:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)


def diff_object(desired: dict, live: dict | None) -> dict:
    kind, name = desired["kind"], desired["metadata"]["name"]
    label = f"{kind}/{name}"
    if live is None:
        return {"kind": kind, "name": name, "change": "create",
                "changes": changes({}, desired),
                "unified": "".join(difflib.unified_diff([], _yaml(desired), f"live/{label}", f"new/{label}"))}
    current = project(_clean_live(live), desired)
    found = changes(current, desired)
    return {"kind": kind, "name": name, "change": "update" if found else "unchanged", "changes": found,
            "unified": "".join(difflib.unified_diff(_yaml(current), _yaml(desired),
                                                    f"live/{label}", f"new/{label}"))}


def diff_all(desired: list[dict], live: list[dict | None]) -> list[dict]:
    return [diff_object(d, l) for d, l in zip(desired, live)]
