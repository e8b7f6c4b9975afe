"""Field sets of structured-merge-diff: the schema shape of objects, paths, and the walks.

A field set is a Python ``set`` of paths; a path is a tuple of FieldsV1 path elements:
``f:name`` (a struct field or map key), ``k:{"name":"web"}`` (an item of a list with merge
keys; a key field left out takes its default, ``protocol: TCP``), ``v:"x"`` (an item of a
set-like list of scalars).  The shape of each object — structs, granular or atomic maps,
associative lists and their keys, sets, atomic lists and structs — comes from the schema of
the protobuf decoder (``protobuf_schema.json``, made from the Go types' ``+listType``/
``+listMapKey``/``patchMergeKey``/``+structType``/``+mapType`` markers).  Fields the schema
does not know are "deduced" as SMD does: maps granular, lists atomic.  ``compare`` and
``to_field_set`` are SMD's ``Compare`` and ``ToFieldSet``; ``added_tree`` is the first in one
pass straight to FieldsV1 (the create path, which every client create takes).
"""
from __future__ import annotations

import functools
import json

from . import protobuf

_KEY_DEFAULTS = {"protocol": "TCP"}
LEAF = ("leaf",)
DEDUCED = ("deduced",)
MISSING = object()
_GO_ZERO = {"string": "", "bool": False, "int32": 0, "int64": 0, "double": 0.0,
            "apimachinery.pkg.api.resource.Quantity": "0", "apimachinery.pkg.util.intstr.IntOrString": 0}
_SCALAR_MSGS = {"apimachinery.pkg.apis.meta.v1.Time", "apimachinery.pkg.apis.meta.v1.MicroTime",
                "apimachinery.pkg.apis.meta.v1.Duration", "apimachinery.pkg.api.resource.Quantity",
                "apimachinery.pkg.util.intstr.IntOrString", "apimachinery.pkg.runtime.RawExtension",
                "apimachinery.pkg.apis.meta.v1.FieldsV1"}
# ---------------------------------------------------------------- schema nodes

@functools.lru_cache(maxsize=1024)
def root_node(api_version: str, kind: str) -> tuple:
    try:
        return ("struct", protobuf.message_for(api_version, kind))
    except protobuf.ProtobufError:
        return DEDUCED


def _type_node(ptype: str) -> tuple:
    if "." not in ptype or ptype in _SCALAR_MSGS or protobuf.schema()[ptype]["atomic"]:
        return LEAF
    return ("struct", ptype)


@functools.lru_cache(maxsize=None)
def struct_fields(msg: str) -> dict:
    """JSON field name -> (node, go pointer, omitempty, label, proto type); embedded structs flattened."""
    out: dict = {}
    for _, _, name, ptype, label, flags, keys in protobuf.schema()[msg]["fields"]:
        if "i" in flags:
            out.update(struct_fields(ptype))
            continue
        if label == "m":
            node = LEAF if "a" in flags else ("map", _type_node(ptype.split(",")[1]))
        elif label == "r":
            node = (("assoc", tuple(sorted(keys)), _type_node(ptype)) if "g" in flags
                    else ("set",) if "s" in flags else LEAF)
        else:
            node = _type_node(ptype)
        out[name] = (node, "p" in flags, "e" in flags, label, ptype)
    return out


def child(node: tuple, key: str) -> tuple | None:
    """The node of ``key`` in a map-like node (None: a struct field the schema does not declare)."""
    kind = node[0]
    if kind == "struct":
        found = _children(node[1]).get(key)
        if found is None:
            return LEAF if key in ("apiVersion", "kind") else None
        return found
    return node[1] if kind == "map" else DEDUCED


_CHILDREN: dict = {}  # message -> {json name: node}, child()'s cache


def _children(msg: str) -> dict:
    fields = _CHILDREN.get(msg)
    if fields is None:
        fields = _CHILDREN[msg] = {k: f[0] for k, f in struct_fields(msg).items()}
    return fields


def _child_or_deduced(node: tuple, fields: dict | None, key: str) -> tuple:
    """``child(node, key) or DEDUCED``, with the struct's ``_children`` looked up by the caller."""
    if fields is not None:
        return fields.get(key) or (LEAF if key in ("apiVersion", "kind") else DEDUCED)
    return node[1] if node[0] == "map" else DEDUCED


def granular(node: tuple, value) -> bool:
    return node[0] in ("struct", "map") or (node[0] == "deduced" and isinstance(value, dict))


@functools.lru_cache(maxsize=None)
def _zero_json(msg: str) -> str:
    """What ``json.Marshal`` gives for the zero value of a Go struct (as JSON text)."""
    out: dict = {}
    for name, (node, pointer, omitempty, label, ptype) in struct_fields(msg).items():
        if node[0] == "struct" and label == "o" and not pointer:
            out[name] = json.loads(_zero_json(node[1]))
        elif (label == "o" and "." in ptype and not pointer) or not omitempty:
            out[name] = _GO_ZERO.get(ptype) if label == "o" and not pointer else None
    return json.dumps(out)


def zero_object(node: tuple) -> dict:
    return json.loads(_zero_json(node[1])) if node[0] == "struct" else {}


@functools.lru_cache(maxsize=None)
def shared_zero(node: tuple) -> dict:
    """``zero_object(node)``, one dict per node: for readers that never change it (``added_tree``)."""
    return zero_object(node)


# ---------------------------------------------------------------- paths

# json.dumps(..., separators=(",", ":")[, sort_keys=True]) without building an encoder per call.
_compact = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
_compact_sorted = json.JSONEncoder(separators=(",", ":"), sort_keys=True, check_circular=False).encode

def key_element(item: dict, keys: tuple) -> str:
    """``k:{...}``; a key field left out takes its schema default (ports' ``protocol: TCP``)."""
    key = {k: item[k] if k in item else _KEY_DEFAULTS[k] for k in keys if k in item or k in _KEY_DEFAULTS}
    return "k:" + _compact_sorted(key)


def items_by_element(value, node: tuple) -> dict:
    """element -> item for an associative list or a set."""
    if not isinstance(value, list):
        return {}
    if node[0] == "set":
        return {"v:" + _compact(v): v for v in value}
    return {key_element(v, node[1]): v for v in value if isinstance(v, dict)}


def path_string(path: tuple) -> str:
    """SMD's ``Path.String()``: ``.spec.template.spec.containers[name="web"].image``."""
    out = []
    for pe in path:
        kind, rest = pe[0], pe[2:]
        if kind == "f":
            out.append("." + rest)
        elif kind == "k":
            out.append("[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(rest).items()) + "]")
        else:
            out.append(f"[={rest}]")
    return "".join(out)


def to_fields_v1(paths: set) -> dict:
    tree: dict = {}
    for p in paths:
        node = tree
        for pe in p:
            node = node.setdefault(pe, {})
        node["."] = {}
    return _finish(tree)


def _finish(tree: dict) -> dict:
    if len(tree) == 1 and "." in tree:
        return {}
    return {k: ({} if k == "." else _finish(v)) for k, v in sorted(tree.items(), key=lambda kv: (kv[0] != ".", kv[0]))}


def from_fields_v1(tree, prefix: tuple = (), out: set | None = None) -> set:
    out = set() if out is None else out
    if not isinstance(tree, dict):
        return out
    for k, sub in tree.items():
        if k == ".":
            out.add(prefix)
        elif not sub:
            out.add(prefix + (k,))
        else:
            from_fields_v1(sub, prefix + (k,), out)
    return out


# ---------------------------------------------------------------- walks

def to_field_set(value, node: tuple, path: tuple = (), out: set | None = None, strict: bool = False) -> set:
    """SMD ``ToFieldSet``: every leaf, atomic value and list item of ``value``."""
    out = set() if out is None else out
    kind = node[0]
    if granular(node, value):
        if not isinstance(value, dict):
            return out
        for k, v in value.items():
            c = child(node, k)
            if c is None:
                if strict:
                    raise KeyError(path_string(path + ("f:" + k,)))
                c = DEDUCED
            p = path + ("f:" + k,)
            to_field_set(v, c, p, out, strict)
            if v is None or v == {} or kind != "struct" or c is DEDUCED and node[0] == "struct":
                out.add(p)
    elif kind in ("assoc", "set") and isinstance(value, list):
        for pe, item in items_by_element(value, node).items():
            p = path + (pe,)
            if kind == "assoc":
                to_field_set(item, node[2], p, out, strict)
            out.add(p)
    else:
        out.add(path)
    return out


def _empty(v) -> bool:
    return v is MISSING or v is None or v == {} or v == []


class Comparison:
    __slots__ = ("added", "removed", "modified")

    def __init__(self):
        self.added: set = set()
        self.removed: set = set()
        self.modified: set = set()


def compare(old, new, node: tuple, path: tuple = (), c: Comparison | None = None) -> Comparison:
    """SMD ``Compare``: leaves added/removed/modified, and non-leaf nodes added or removed."""
    c = Comparison() if c is None else c
    kind = node[0]
    both_empty = _empty(old) and _empty(new)  # SMD's emptyPromoteToLeaf
    if not both_empty and granular(node, new if isinstance(new, dict) else old):
        lo = old if isinstance(old, dict) else {}
        ro = new if isinstance(new, dict) else {}
        for k in lo.keys() | ro.keys():
            ov, nv = lo.get(k, MISSING), ro.get(k, MISSING)
            if ov is nv or (ov == nv and ov is not MISSING):
                continue
            compare(ov, nv, child(node, k) or DEDUCED, path + ("f:" + k,), c)
    elif not both_empty and kind in ("assoc", "set"):
        li, ri = items_by_element(old, node), items_by_element(new, node)
        for pe in li.keys() | ri.keys():
            ov, nv = li.get(pe, MISSING), ri.get(pe, MISSING)
            if ov == nv:
                continue
            compare(ov, nv, node[2] if kind == "assoc" else LEAF, path + (pe,), c)
    else:
        if old is MISSING:
            c.added.add(path)
        elif new is MISSING:
            c.removed.add(path)
        elif old != new:
            c.modified.add(path)
        return c
    if old is MISSING:
        c.added.add(path)
    elif new is MISSING:
        c.removed.add(path)
    return c


def added_tree(old, new, node: tuple):
    """The FieldsV1 of ``compare(old, new).added | .modified`` in one pass (the create path)."""
    if old is MISSING:
        return None if new is MISSING else _new_tree(new, node)
    kind = node[0]
    if kind != "leaf" and not (_empty(old) and _empty(new)):
        if granular(node, new if isinstance(new, dict) else old):
            lo = old if isinstance(old, dict) else {}
            out = {}
            if isinstance(new, dict):
                fields = _children(node[1]) if kind == "struct" else None
                for k in sorted(new):
                    nv, ov = new[k], lo.get(k, MISSING)
                    if ov is MISSING:
                        out["f:" + k] = _new_tree(nv, _child_or_deduced(node, fields, k))
                    elif ov != nv:
                        sub = added_tree(ov, nv, _child_or_deduced(node, fields, k))
                        if sub is not None:
                            out["f:" + k] = sub
            return out or None
        if kind in ("assoc", "set"):
            li, ri = items_by_element(old, node), items_by_element(new, node)
            out = {}
            for pe in sorted(ri):
                ov = li.get(pe, MISSING)
                if ov is MISSING or ov != ri[pe]:
                    sub = added_tree(ov, ri[pe], node[2] if kind == "assoc" else LEAF)
                    if sub is not None:
                        out[pe] = sub
            return out or None
    if new is MISSING:
        return None
    return {} if old is MISSING or old != new else None


def _new_tree(new, node: tuple) -> dict:
    """``added_tree(MISSING, new, node)``: every field of ``new`` (a value with nothing before it),
    without the comparisons; the create path spends most of its field bookkeeping here."""
    kind = node[0]
    if kind == "leaf" or new is None or new == {} or new == []:
        return {}
    if kind == "struct" or kind == "map" or (kind == "deduced" and isinstance(new, dict)):
        if not isinstance(new, dict):
            return {}
        out = {".": {}}
        if kind == "struct":
            fields = _children(node[1])
            for k in sorted(new):
                out["f:" + k] = _new_tree(new[k], fields.get(k) or (LEAF if k in ("apiVersion", "kind") else DEDUCED))
        else:
            c = node[1] if kind == "map" else DEDUCED
            for k in sorted(new):
                out["f:" + k] = _new_tree(new[k], c)
        return out
    if kind == "assoc" or kind == "set":
        items = items_by_element(new, node)
        if not items:
            return {}
        c = node[2] if kind == "assoc" else LEAF
        out = {".": {}}
        for pe in sorted(items):
            out[pe] = _new_tree(items[pe], c)
        return out
    return {}
