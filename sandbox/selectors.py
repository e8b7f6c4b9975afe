"""Label and field selectors, with the grammar and semantics of k8s.io/apimachinery.

Label selectors (``?labelSelector=``) support equality (``a=b``, ``a==b``, ``a!=b``),
sets (``a in (x,y)``, ``a notin (x,y)``), existence (``a``, ``!a``) and the numeric
``a>1`` / ``a<1``.  As in Kubernetes, ``!=`` and ``notin`` also match objects that do
not carry the label at all.

Field selectors (``?fieldSelector=``) support ``=``, ``==`` and ``!=`` on the fields a real
API server indexes for each resource (``metadata.name`` and ``metadata.namespace``
everywhere, plus e.g. ``involvedObject.*`` for events, which ``kubectl describe`` uses).
An unsupported field is a 400, as on a real server, so code that works here does not
break against a real cluster.

A parsed selector is a plain tuple of requirements; matching is a loop over it.  Parsing
is cached because watchers and informers send the same few selectors over and over.
"""
from __future__ import annotations

import functools
import re

_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class SelectorError(ValueError):
    pass


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


_SET_RE = re.compile(r"^\s*(\S+?)\s+(in|notin)\s*\((.*)\)\s*$")
_OP_RE = re.compile(r"^\s*([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(.*?)\s*$")


def _check_key(key: str, raw: str) -> None:
    if not key or len(key.split("/")[-1]) > 63 or not _KEY_RE.match(key):
        raise SelectorError(f"unable to parse requirement: invalid label key {key!r} in {raw!r}")


def _check_value(value: str, raw: str) -> None:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(f"unable to parse requirement: invalid label value {value!r} in {raw!r}")


@functools.lru_cache(maxsize=1024)
def parse_label_selector(s: str | None) -> tuple:
    """Parse a label selector string into requirements ``(key, op, values)``."""
    if not s or not s.strip():
        return ()
    reqs = []
    for part in _split_top(s):
        raw = part
        part = part.strip()
        if not part:
            raise SelectorError(f"unable to parse requirement: found '', expected: identifier in {s!r}")
        m = _SET_RE.match(part)
        if m:
            key, op, vals = m.group(1), m.group(2), m.group(3)
            _check_key(key, raw)
            values = frozenset(v.strip() for v in vals.split(",")) if vals.strip() else frozenset()
            for v in values:
                _check_value(v, raw)
            reqs.append((key, op, values))
            continue
        if part.startswith("!"):
            key = part[1:].strip()
            _check_key(key, raw)
            reqs.append((key, "!", None))
            continue
        m = _OP_RE.match(part)
        if m:
            key, op, value = m.group(1), m.group(2), m.group(3)
            _check_key(key, raw)
            if op in (">", "<"):
                try:
                    value = int(value)
                except ValueError:
                    raise SelectorError(f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer in {raw!r}")
                reqs.append((key, op, value))
                continue
            _check_value(value, raw)
            reqs.append((key, "!=" if op == "!=" else "=", value))
            continue
        _check_key(part, raw)
        reqs.append((part, "exists", None))
    return tuple(reqs)


def labels_match(reqs: tuple, labels: dict | None) -> bool:
    labels = labels or {}
    for key, op, val in reqs:
        if op == "=":
            if labels.get(key) != val:
                return False
        elif op == "!=":
            if labels.get(key) == val:
                return False
        elif op == "exists":
            if key not in labels:
                return False
        elif op == "!":
            if key in labels:
                return False
        elif op == "in":
            if labels.get(key) not in val:
                return False
        elif op == "notin":
            if key in labels and labels[key] in val:
                return False
        elif op in (">", "<"):
            try:
                n = int(labels[key])
            except (KeyError, ValueError):
                return False
            if (op == ">" and not n > val) or (op == "<" and not n < val):
                return False
    return True


def selector_object_to_reqs(sel: dict | None) -> tuple:
    """Convert a ``LabelSelector`` object (matchLabels/matchExpressions) to requirements.

    An empty selector matches everything, as for a Deployment's ``spec.selector`` semantics
    in the API machinery (validation separately forbids empty Deployment selectors).
    """
    if not sel:
        return ()
    reqs = [(k, "=", v) for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or []:
        op = expr.get("operator")
        key = expr.get("key")
        vals = frozenset(expr.get("values") or [])
        if op == "In":
            reqs.append((key, "in", vals))
        elif op == "NotIn":
            reqs.append((key, "notin", vals))
        elif op == "Exists":
            reqs.append((key, "exists", None))
        elif op == "DoesNotExist":
            reqs.append((key, "!", None))
        else:
            raise SelectorError(f"{op!r} is not a valid label selector operator")
    return tuple(reqs)


def selector_object_to_string(sel: dict | None) -> str:
    """Render a LabelSelector object the way kubectl prints it (``a=b,c in (d)``)."""
    parts = []
    for k, op, v in selector_object_to_reqs(sel):
        if op == "=":
            parts.append(f"{k}={v}")
        elif op in ("in", "notin"):
            parts.append(f"{k} {op} ({','.join(sorted(v))})")
        elif op == "exists":
            parts.append(k)
        elif op == "!":
            parts.append(f"!{k}")
    return ",".join(parts)


# Fields a real API server lets you select on, per resource (plus metadata.name and
# metadata.namespace, which every resource supports).
EXTRA_FIELDS = {
    "pods": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"},
    "events": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"},
    "secrets": {"type"},
    "namespaces": {"status.phase"},
    "replicasets": {"status.replicas"},
}


# Selectable fields whose value lives elsewhere in the object.
FIELD_PATHS = {"source": ("source", "component")}


@functools.lru_cache(maxsize=1024)
def parse_field_selector(s: str | None, resource: str) -> tuple:
    if not s or not s.strip():
        return ()
    allowed = {"metadata.name", "metadata.namespace"} | EXTRA_FIELDS.get(resource, set())
    reqs = []
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            field, value = part.split("!=", 1)
            op = "!="
        elif "==" in part:
            field, value = part.split("==", 1)
            op = "="
        elif "=" in part:
            field, value = part.split("=", 1)
            op = "="
        else:
            raise SelectorError(f"invalid selector: '{s}'; can't understand '{part}'")
        field = field.strip()
        if field not in allowed:
            raise SelectorError(f'field label not supported: {field}')
        reqs.append((FIELD_PATHS.get(field) or tuple(field.split(".")), op, value.strip()))
    return tuple(reqs)


def _field_value(obj: dict, path: tuple) -> str:
    cur = obj
    for p in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(p)
        if cur is None:
            return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def fields_match(reqs: tuple, obj: dict) -> bool:
    for path, op, value in reqs:
        actual = _field_value(obj, path)
        if (actual == value) != (op == "="):
            return False
    return True
