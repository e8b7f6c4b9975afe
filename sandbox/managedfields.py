"""``metadata.managedFields``: who owns which fields, and the bookkeeping of ``Update``s.

Every write by a client records an ``Update`` entry for its field manager (the
``fieldManager`` query parameter, else the User-Agent up to the first ``/``, as
``managerOrUserAgent`` does): the fields it added or changed become its own and leave the
other managers (an Update always "forces"), the fields it removed leave every manager's
set — SMD's ``Updater.Update``.  A create is compared with the Go zero value of the kind
(non-pointer structs present), so the ``.`` members appear where they do on a real server.
Entries are identified like ``BuildManagerIdentifier`` (manager, operation, apiVersion but
for appliers, subresource), sorted like ``sortEncodedManagedFields``, and their time only
moves when the manager's fields changed.  A request may replace managedFields (``[]`` or
``[{}]`` resets them); subresource writes cannot.  Controller (internal) writes keep the
stored managedFields (a real cluster adds ``kube-controller-manager``/``kubelet`` entries).
Field sets themselves are in ``fieldsets.py``.
"""
from __future__ import annotations

import contextvars
import json
import time
from datetime import datetime, timezone

from .fieldsets import (MISSING, added_tree, compare, from_fields_v1, root_node, shared_zero,
                        to_fields_v1)

# The field manager of the request being handled: set by the HTTP layer (api.py) when it
# reads a request body, read by the registry when it writes (None: an internal write).
REQUEST_MANAGER: contextvars.ContextVar = contextvars.ContextVar("sandbox_field_manager", default=None)

STRIPPED = {("f:apiVersion",), ("f:kind",), ("f:metadata",)} | {
    ("f:metadata", f"f:{k}") for k in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                        "clusterName", "generation", "managedFields", "resourceVersion")}


def manager_for(query, user_agent: str, subresource: str | None = None) -> tuple:
    """(``managerOrUserAgent``: the fieldManager parameter, else the User-Agent's first part,
    the subresource its entries name — ``scale`` for writes through ``/scale``)."""
    return query.get("fieldManager") or (user_agent or "").split("/")[0][:128], subresource


# ---------------------------------------------------------------- entries

_last_second = [-1, ""]


def now() -> str:
    """Second-precision UTC time of an entry; memoised per second (every client write stamps one)."""
    sec = int(time.time())
    if sec != _last_second[0]:
        _last_second[1] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))
        _last_second[0] = sec
    return _last_second[1]


def clean(paths: set, has_status: bool, subresource: str | None) -> set:
    """Drop what the field manager never tracks: type and identity metadata (stripMeta) and the
    fields the strategy resets (status on the main resource, all but status on ``/status``)."""
    if subresource == "status":
        return {p for p in paths if p and p[0] == "f:status"}
    if has_status:
        return {p for p in paths if p not in STRIPPED and (not p or p[0] != "f:status")}
    return {p for p in paths if p not in STRIPPED}


_TREES: dict = {}
# json.dumps(tree, separators=...) without a new encoder per call (trees are never cyclic)
_compact = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def shared(tree: dict) -> dict:
    """One dict per distinct FieldsV1 tree.  Stored objects are never changed in place, so
    the objects of one shape (every Deployment a client created alike) can hold the same
    tree: far fewer live dicts for the cyclic GC to walk, which is what managedFields
    otherwise cost on the write path."""
    key = _compact(tree)
    found = _TREES.get(key)
    if found is None:
        if len(_TREES) >= 4096:
            _TREES.clear()
        found = _TREES[key] = tree
    return found


def make_entry(manager: str, operation: str, api_version: str, paths: set, subresource: str | None,
               when: str | None = None) -> dict:
    e = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": when or now(),
         "fieldsType": "FieldsV1", "fieldsV1": shared(to_fields_v1(paths))}
    if subresource:
        e["subresource"] = subresource
    return e


def identity(e: dict) -> tuple:
    """``BuildManagerIdentifier``: appliers are one manager whatever apiVersion they used."""
    op = e.get("operation", "")
    return e.get("manager", ""), op, "" if op == "Apply" else e.get("apiVersion", ""), e.get("subresource", "")


def sort_entries(entries: list) -> list:
    return sorted(entries, key=lambda e: (e.get("operation", ""), e.get("time", ""), e.get("manager", ""),
                                          e.get("apiVersion", ""), e.get("subresource", "")))


def without_managed(obj: dict) -> dict:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def subtract(entries: list, paths: set, skip: tuple | None = None) -> tuple[list, dict | None]:
    """``entries`` minus ``paths`` (empty entries dropped); the entry of identity ``skip`` apart."""
    out, mine = [], None
    for e in entries:
        if skip is not None and identity(e) == skip:
            mine = e
            continue
        if paths:
            own = from_fields_v1(e.get("fieldsV1"))
            if own & paths:
                own -= paths
                if not own:
                    continue
                e = {**e, "fieldsV1": to_fields_v1(own)}
        out.append(e)
    return out, mine


def stamp_create(rt, obj: dict, manager: str) -> None:
    """The ``Update`` entry of a create: every field of the (defaulted) object."""
    node = root_node(rt.api_version, rt.kind)
    tree = added_tree(shared_zero(node), without_managed(obj), node) or {}
    for k in ("f:apiVersion", "f:kind") + (("f:status",) if rt.has_status else ()):
        tree.pop(k, None)
    meta = tree.get("f:metadata")
    if meta is not None:
        for p in STRIPPED:
            if len(p) == 2:
                meta.pop(p[1], None)
        if not meta:
            del tree["f:metadata"]
    if tree:
        obj["metadata"]["managedFields"] = [{"manager": manager, "operation": "Update", "apiVersion": rt.api_version,
                                             "time": now(), "fieldsType": "FieldsV1", "fieldsV1": shared(tree)}]
    else:
        obj["metadata"].pop("managedFields", None)


def _base_entries(live: list, sent, subresource: str | None) -> list:
    """``decodeLiveOrNew``: the request's managedFields replace the live ones when it sends
    valid ones, ``[]`` or ``[{}]`` resets them; a subresource always keeps the live ones."""
    if subresource or sent is MISSING or sent is None or not isinstance(sent, list):
        return live
    if sent == [] or sent == [{}]:
        return []
    if all(isinstance(e, dict) and e.get("manager") is not None and isinstance(e.get("fieldsV1"), dict)
           for e in sent):
        sent = [{**e, "time": _rfc3339(e["time"])} if isinstance(e.get("time"), str) else e for e in sent]
        return live if sent == live else sent  # clients re-encode times (``+00:00``)
    return live


def _rfc3339(s: str) -> str:
    try:
        return datetime.fromisoformat(s).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return s


def stamp_update(rt, old: dict, new: dict, subresource: str | None, manager: str, sent=MISSING,
                 label: str | None = None) -> None:
    """Record ``manager``'s Update on ``new`` (``Updater.Update`` with force): what it added or
    changed becomes its own and leaves the others, what it removed leaves everybody."""
    live = old["metadata"].get("managedFields") or []
    base = _base_entries(live, sent, subresource)
    node = root_node(rt.api_version, rt.kind)
    c = compare(without_managed(old), new, node)
    changed = clean(c.added | c.modified, rt.has_status, subresource)
    removed = clean(c.removed, rt.has_status, subresource)
    label = label or subresource
    ident = (manager, "Update", rt.api_version, label or "")
    entries, mine = subtract(base, changed | removed, ident)
    if mine is not None or changed:
        own = from_fields_v1(mine.get("fieldsV1")) if mine is not None else set()
        mine_now = (own - removed) | changed
        if mine_now and not changed and mine_now == own:
            entries.append(mine)  # untouched: its time stays (IgnoreManagedFieldsTimestampsTransformer)
        elif mine_now:
            entries.append(make_entry(manager, "Update", rt.api_version, mine_now, label,
                                      None if changed else mine.get("time")))
    if entries:
        new["metadata"]["managedFields"] = entries if entries == base else sort_entries(entries)
    else:
        new["metadata"].pop("managedFields", None)
