"""The three PATCH flavours of the Kubernetes API.

* ``application/merge-patch+json`` - RFC 7386 (``null`` deletes, objects merge, lists replace).
* ``application/json-patch+json`` - RFC 6902 (add/remove/replace/move/copy/test).
* ``application/strategic-merge-patch+json`` - Kubernetes' strategic merge patch (SMP):
  like a merge patch, but lists declared ``patchStrategy: merge`` in the Go types merge
  element-wise by their ``patchMergeKey`` (containers by ``name``, ports by
  ``containerPort``, volumeMounts by ``mountPath``, ...) and the directives kubectl sends
  are understood (``$patch: replace|delete|merge``, ``$setElementOrder/<field>``,
  ``$retainKeys``, ``$deleteFromPrimitiveList/<field>``).

Real servers take the merge metadata from the Go struct tags.  The sandbox cannot, so
``SCHEMAS`` below transcribes the tags for the kinds the sandbox serves.  Only lists
with a merge strategy and maps with ``retainKeys`` need to be described; everything else
falls back to merge-patch behaviour, which is what SMP does for untagged fields.
"""
from __future__ import annotations

import copy
import json


class PatchError(ValueError):
    """The patch cannot be applied (maps to 422 / 400 in the API layer)."""


# ---------------------------------------------------------------- SMP schemas

def _keyed(key: str, item: dict | None = None, retain: bool = False) -> dict:
    return {"list": "merge", "key": key, "item": {"fields": item or {}, "retainKeys": retain}}


_PRIMITIVE_MERGE = {"list": "merge"}  # list of scalars, union semantics (e.g. finalizers)

_OBJECT_META = {"fields": {"finalizers": _PRIMITIVE_MERGE, "ownerReferences": _keyed("uid")}}

_CONTAINER = {
    "ports": _keyed("containerPort"),
    "env": _keyed("name"),
    "volumeMounts": _keyed("mountPath"),
    "volumeDevices": _keyed("devicePath"),
}

_POD_SPEC = {
    "fields": {
        "containers": _keyed("name", _CONTAINER),
        "initContainers": _keyed("name", _CONTAINER),
        "ephemeralContainers": _keyed("name", _CONTAINER),
        "volumes": _keyed("name", retain=True),
        "imagePullSecrets": _keyed("name"),
        "hostAliases": _keyed("ip"),
        "topologySpreadConstraints": _keyed("topologyKey"),
        "resourceClaims": _keyed("name", retain=True),
        "schedulingGates": _keyed("name"),
    }
}

_POD_TEMPLATE = {"fields": {"metadata": _OBJECT_META, "spec": _POD_SPEC}}

_CONDITIONS = _keyed("type")

SCHEMAS: dict[str, dict] = {
    "Pod": {"fields": {
        "metadata": _OBJECT_META,
        "spec": _POD_SPEC,
        "status": {"fields": {"conditions": _CONDITIONS, "podIPs": _keyed("ip"), "hostIPs": _keyed("ip")}},
    }},
    "Deployment": {"fields": {
        "metadata": _OBJECT_META,
        "spec": {"fields": {"template": _POD_TEMPLATE, "strategy": {"fields": {}, "retainKeys": True}}},
        "status": {"fields": {"conditions": _CONDITIONS}},
    }},
    "ReplicaSet": {"fields": {
        "metadata": _OBJECT_META,
        "spec": {"fields": {"template": _POD_TEMPLATE}},
        "status": {"fields": {"conditions": _CONDITIONS}},
    }},
    "Service": {"fields": {
        "metadata": _OBJECT_META,
        "spec": {"fields": {"ports": _keyed("port")}},
        "status": {"fields": {"conditions": _CONDITIONS}},
    }},
    "Namespace": {"fields": {"metadata": _OBJECT_META, "status": {"fields": {"conditions": _CONDITIONS}}}},
    "ServiceAccount": {"fields": {"metadata": _OBJECT_META, "secrets": _keyed("name")}},
    "HorizontalPodAutoscaler": {"fields": {"metadata": _OBJECT_META, "status": {"fields": {"conditions": _CONDITIONS}}}},
    # The workload kinds of sandbox/workloads.py and sandbox/jobs.py, and Nodes.
    **{kind: {"fields": {
        "metadata": _OBJECT_META,
        "spec": {"fields": {"template": _POD_TEMPLATE, "updateStrategy": {"fields": {}, "retainKeys": True}}},
        "status": {"fields": {"conditions": _CONDITIONS}},
    }} for kind in ("DaemonSet", "StatefulSet", "ReplicationController", "Job")},
    "CronJob": {"fields": {"metadata": _OBJECT_META, "spec": {"fields": {"jobTemplate": {"fields": {
        "metadata": _OBJECT_META, "spec": {"fields": {"template": _POD_TEMPLATE}}}}}}}},
    "Node": {"fields": {"metadata": _OBJECT_META, "status": {"fields": {
        "conditions": _CONDITIONS, "addresses": _keyed("type")}}}},
}
_DEFAULT_SCHEMA = {"fields": {"metadata": _OBJECT_META}}


def schema_for(kind: str) -> dict:
    return SCHEMAS.get(kind, _DEFAULT_SCHEMA)


# ---------------------------------------------------------------- merge patch

def merge_patch(original, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            result[key] = merge_patch(result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    return result


# ---------------------------------------------------------------- JSON patch

def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [_unescape(t) for t in path[1:].split("/")]


def _walk(doc, tokens: list[str], path: str):
    cur = doc
    for t in tokens:
        if isinstance(cur, dict):
            if t not in cur:
                raise PatchError(f"doc is missing path: {path!r}")
            cur = cur[t]
        elif isinstance(cur, list):
            try:
                cur = cur[int(t)]
            except (ValueError, IndexError):
                raise PatchError(f"doc is missing path: {path!r}")
        else:
            raise PatchError(f"doc is missing path: {path!r}")
    return cur


def _get(doc, path: str):
    return _walk(doc, _pointer(path), path)


def _add(doc, path: str, value):
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                idx = int(last)
            except ValueError:
                raise PatchError(f"invalid array index {last!r} in {path!r}")
            if idx < 0 or idx > len(parent):
                raise PatchError(f"array index out of bounds in {path!r}")
            parent.insert(idx, value)
    else:
        raise PatchError(f"doc is missing path: {path!r}")
    return doc


def _remove(doc, path: str):
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, tokens[:-1], path)
    last = tokens[-1]
    try:
        if isinstance(parent, dict):
            return parent.pop(last)
        if isinstance(parent, list):
            return parent.pop(int(last))
    except (KeyError, ValueError, IndexError):
        pass
    raise PatchError(f"unable to remove nonexistent key: {path!r}")


def json_patch(original, operations):
    """RFC 6902 JSON patch."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(original)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError(f"invalid json patch operation {op!r}")
        kind, path = op["op"], op.get("path", "")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            if _pointer(path):
                _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "move":
            value = _remove(doc, op["from"])
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, op["from"])))
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"testing value {path} failed")
        else:
            raise PatchError(f"unexpected kind of json patch operation: {kind!r}")
    return doc


# ---------------------------------------------------------------- strategic merge patch

_DELETE = object()


def _strip_directives(value):
    """Return *value* without SMP directives (for values that are copied in whole)."""
    if isinstance(value, dict):
        if value.get("$patch") == "delete":
            return _DELETE
        return {k: _strip_directives(v) for k, v in value.items()
                if not k.startswith("$") and v is not None}
    if isinstance(value, list):
        out = [_strip_directives(v) for v in value]
        return [v for v in out if v is not _DELETE]
    return value


def _merge_list(original: list, patch: list, spec: dict) -> list:
    key = spec.get("key")
    if key is None:  # list of primitives with merge strategy: set union, original order first
        out = list(original)
        for v in patch:
            if isinstance(v, dict):
                continue
            if v not in out:
                out.append(v)
        return out
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [_strip_directives(p) for p in patch
                if not (isinstance(p, dict) and p.get("$patch") == "replace")]
    out = [copy.deepcopy(o) for o in original]
    item_schema = spec.get("item") or {}
    for p in patch:
        if not isinstance(p, dict):
            raise PatchError(f"strategic merge patch: list item {p!r} is not an object")
        if key not in p:
            raise PatchError(f"map: {p!r} does not contain declared merge key: {key}")
        idx = next((i for i, o in enumerate(out) if isinstance(o, dict) and o.get(key) == p[key]), None)
        if p.get("$patch") == "delete":
            out = [o for o in out if not (isinstance(o, dict) and o.get(key) == p[key])]
            continue
        if idx is None:
            out.append(_strip_directives(p))
        else:
            merged = _smp(out[idx], p, item_schema)
            if merged is _DELETE:
                del out[idx]
            else:
                out[idx] = merged
    return out


def _reorder(items: list, order: list, key: str | None) -> list:
    def ident(x):
        return x.get(key) if (key and isinstance(x, dict)) else x
    wanted = [o.get(key) if (key and isinstance(o, dict)) else o for o in order]
    pos = {w: i for i, w in enumerate(wanted)}
    ordered = sorted((x for x in items if ident(x) in pos), key=lambda x: pos[ident(x)])
    rest = [x for x in items if ident(x) not in pos]
    return ordered + rest


def _smp(original, patch, schema: dict):
    if not isinstance(patch, dict):
        return _strip_directives(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    if not isinstance(original, dict):
        original = {}
    fields = schema.get("fields", {})
    result = dict(original)
    retain = patch.get("$retainKeys")
    if retain is not None:
        keep = set(retain)
        result = {k: v for k, v in result.items() if k in keep}
    for k, v in patch.items():
        if k.startswith("$"):
            continue
        if v is None:
            result.pop(k, None)
            continue
        sub = fields.get(k, {})
        cur = result.get(k)
        if isinstance(v, dict):
            merged = _smp(cur, v, sub)
            if merged is _DELETE:
                result.pop(k, None)
            else:
                result[k] = merged
        elif isinstance(v, list) and sub.get("list") == "merge":
            result[k] = _merge_list(cur if isinstance(cur, list) else [], v, sub)
        else:
            stripped = _strip_directives(v)
            if stripped is _DELETE:
                result.pop(k, None)
            else:
                result[k] = stripped
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in v]
    for k, v in patch.items():
        if k.startswith("$setElementOrder/"):
            field = k.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(v, list):
                result[field] = _reorder(result[field], v, fields.get(field, {}).get("key"))
    return result


def strategic_merge_patch(original: dict, patch: dict, kind: str) -> dict:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch must be a JSON object")
    out = _smp(original, patch, schema_for(kind))
    if out is _DELETE:
        raise PatchError("strategic merge patch cannot delete the whole object")
    return out


def apply_patch(content_type: str, original: dict, body: bytes, kind: str) -> dict:
    """Apply a PATCH request body of the given content type to *original* (not mutated)."""
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise PatchError(f"invalid JSON in patch body: {exc}")
    if content_type == "application/json-patch+json":
        return json_patch(original, patch)
    if content_type == "application/merge-patch+json":
        if not isinstance(patch, dict):
            raise PatchError("merge patch must be a JSON object")
        return merge_patch(copy.deepcopy(original), patch)
    if content_type == "application/strategic-merge-patch+json":
        return strategic_merge_patch(copy.deepcopy(original), patch, kind)
    raise PatchError(f"unsupported patch type {content_type!r}")
