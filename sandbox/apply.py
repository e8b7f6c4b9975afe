"""Server-side apply: ``PATCH`` with ``application/apply-patch+yaml``.

What ``kubectl apply --server-side`` and ``client.patch(..., field_manager=...)`` with an
apply patch get from kube-apiserver, as structured-merge-diff's ``Updater.Apply`` does it:

1. the applied configuration is merged into the live object (or into the kind's zero value
   with the URL's name and namespace when there is none: apply creates, answering 201):
   structs and granular maps merge field by field, lists with merge keys item by item
   (containers by ``name``, ports by ``containerPort``+``protocol``...), set-like lists
   of scalars by value, everything else (atomic lists, atomic structs such as a
   LabelSelector, scalars) is replaced;
2. the manager's ``Apply`` entry becomes exactly the field set of the configuration;
3. fields this manager applied last time and no longer applies are removed from the
   object unless another manager owns them or something below them (pruning);
4. a field another manager owns whose value the apply changes is a conflict: 409 with the
   real message and ``details.causes`` (``FieldManagerConflict``) — unless ``force=true``,
   which takes the fields over.  Removed fields leave every manager's set.  For the manager
   ``kubectl`` the client-side apply annotation counts as its own earlier apply: fields it
   still agrees with may be taken over without ``force`` (moving from ``kubectl apply`` to
   ``kubectl apply --server-side``), and the annotation follows each apply.

Simplified: list items keep the live order (new ones are appended) where SMD interleaves
by the applied order; no version conversion of entries (one version per kind); the set of
fields reset by a strategy is ``status`` (or everything but ``status`` on ``/status``).
"""
from __future__ import annotations

import copy
import json

import yaml

from . import fieldsets as fs
from . import managedfields as mf
from .registry import ApiError, Registry, bad_request, not_found
from .resources import ResourceType

MEDIA_TYPE = "application/apply-patch+yaml"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _patch_options_invalid(field: str, kind: str, message: str) -> ApiError:
    return ApiError(422, "Invalid", f'PatchOptions.meta.k8s.io "" is invalid: {field}: {message}',
                    {"group": "meta.k8s.io", "kind": "PatchOptions",
                     "causes": [{"reason": kind, "message": message, "field": field}]})


def check_options(query, apply: bool) -> None:
    """``ValidatePatchOptions``: apply needs a fieldManager, only apply takes ``force``."""
    if not apply and "force" in query:
        raise _patch_options_invalid("force", "FieldValueForbidden", "Forbidden: may not be specified for non-apply patch")
    if apply and not query.get("fieldManager"):
        raise _patch_options_invalid("fieldManager", "FieldValueRequired", "Required value: is required for apply patch")


def conflict_error(conflicts: list) -> ApiError:
    """``NewConflictError``: conflicts are (manager entry, path) pairs."""
    def who(e: dict) -> str:
        s = json.dumps(e.get("manager", ""))
        if e.get("subresource"):
            s += f' with subresource {json.dumps(e["subresource"])}'
        return s + (f' using {e.get("apiVersion", "")}' if e.get("operation") == "Update" else "")

    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {who(e)}", "field": fs.path_string(p)}
              for e, p in conflicts]
    if len(conflicts) == 1:
        msg = f"Apply failed with 1 conflict: conflict with {who(conflicts[0][0])}: {causes[0]['field']}"
    else:
        lines = []
        for w in sorted({who(e) for e, _ in conflicts}):
            lines.append(f"conflicts with {w}:")
            lines.extend(f"- {c['field']}" for (e, _), c in zip(conflicts, causes) if who(e) == w)
        msg = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", msg, {"causes": causes})


# ---------------------------------------------------------------- merge and prune

def merge(live, cfg, node: tuple):
    """SMD merge of the applied configuration ``cfg`` into ``live`` (neither mutated)."""
    kind = node[0]
    if isinstance(cfg, dict) and fs.granular(node, cfg):
        out = dict(live) if isinstance(live, dict) else {}
        for k, v in cfg.items():
            out[k] = merge(out.get(k, fs.MISSING), v, fs.child(node, k) or fs.DEDUCED)
        return out
    if isinstance(cfg, list) and kind in ("assoc", "set"):
        live_items = fs.items_by_element(live, node)
        cfg_items = fs.items_by_element(cfg, node)
        out = []
        for pe, item in live_items.items():
            if pe in cfg_items:
                item = merge(item, cfg_items[pe], node[2]) if kind == "assoc" else item
            out.append(item)
        out.extend(copy.deepcopy(item) for pe, item in cfg_items.items() if pe not in live_items)
        return out
    return copy.deepcopy(cfg)


def _named_prefixes(paths: set) -> set:
    """``EnsureNamedFieldsAreMembers`` (approximately): the fields on the way to each path."""
    out = set(paths)
    for p in paths:
        for i in range(1, len(p)):
            if p[i - 1].startswith("f:"):
                out.add(p[:i])
    return out


def _remove(obj, path: tuple) -> None:
    cur = obj
    for i, pe in enumerate(path):
        last = i == len(path) - 1
        if isinstance(cur, dict) and pe.startswith("f:"):
            if pe[2:] not in cur:
                return
            if last:
                del cur[pe[2:]]
                return
            cur = cur[pe[2:]]
        elif isinstance(cur, list) and pe[0] in "kv":
            keys = tuple(json.loads(pe[2:])) if pe[0] == "k" else None
            idx = next((j for j, it in enumerate(cur)
                        if (fs.key_element(it, keys) if keys is not None and isinstance(it, dict)
                            else "v:" + json.dumps(it, separators=(",", ":"))) == pe), None)
            if idx is None:
                return
            if last:
                del cur[idx]
                return
            cur = cur[idx]
        else:
            return


def prune(merged: dict, last: set, owned: set) -> dict:
    """Remove what the manager applied last time, does not apply now and nobody else owns."""
    protected = set(owned)
    for p in owned:
        protected.update(p[:i] for i in range(1, len(p)))
    gone = sorted((p for p in _named_prefixes(last) if p and p not in protected and p not in mf.STRIPPED),
                  key=len)
    done: list = []
    for p in gone:
        if any(p[:len(d)] == d for d in done):
            continue
        _remove(merged, p)
        done.append(p)
    return merged


# ---------------------------------------------------------------- client-side apply's annotation

def _agreed_with_last_applied(rt: ResourceType, live: dict, node: tuple) -> set:
    """``allowedConflictsFromLastApplied``: the fields of the client-side apply annotation whose
    values the live object still has — ``kubectl apply --server-side`` may take those over."""
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = json.loads(raw) if raw else None
    except ValueError:
        return set()
    if not isinstance(last, dict) or last.get("apiVersion") != rt.api_version:
        return set()
    c = fs.compare(last, live, node)
    return fs.to_field_set(last, node) - c.modified - c.added - c.removed


def _last_applied(cfg: dict) -> str:
    """``buildLastApplied``: the applied configuration as Go encodes it, without the annotation."""
    meta = dict(cfg.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if "annotations" in meta:
        meta["annotations"] = annotations
    text = json.dumps({**cfg, "metadata": meta}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n"


# ---------------------------------------------------------------- apply

def _parse(raw: bytes) -> dict:
    try:
        cfg = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise bad_request(f"error decoding YAML: {exc}") from None
    if not isinstance(cfg, dict):
        raise bad_request("error decoding YAML: the applied configuration must be an object")
    return cfg


def server_side_apply(registry: Registry, rt: ResourceType, ns: str, name: str, raw: bytes, query,
                      subresource: str | None = None, dry_run: bool = False):
    """Apply ``raw``; returns (entry, created)."""
    check_options(query, True)
    manager, force = query["fieldManager"], query.get("force") == "true"
    cfg = _parse(raw)
    if cfg.get("apiVersion") != rt.api_version:
        raise bad_request(f"Incorrect version specified in apply patch. Specified patch version: "
                          f"{cfg.get('apiVersion') or ''}, expected: {rt.api_version}")
    if cfg.get("kind") != rt.kind:
        raise bad_request(f"the kind in the data ({cfg.get('kind')}) does not match the expected kind ({rt.kind})")
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    if meta.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    if meta.get("name") not in (None, name):
        raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
    node = fs.root_node(rt.api_version, rt.kind)
    try:
        applied = fs.to_field_set(cfg, node, strict=node[0] == "struct")
    except KeyError as exc:  # kube-apiserver 1.36 answers this one with a 500 naming namespace/name
        raise ApiError(500, "", f"failed to create typed patch object ({meta.get('namespace') or ''}/"
                                f"{meta.get('name') or ''}; {rt.group}/{rt.version}, Kind={rt.kind}): "
                                f"{exc.args[0]}: field not declared in schema") from None
    ns = ns if rt.namespaced else ""
    old = registry.store.get(rt.key, ns, name)
    if old is None:
        if subresource:
            raise not_found(rt, name)
        live = {"apiVersion": rt.api_version, "kind": rt.kind,
                "metadata": {"name": name, **({"namespace": ns} if rt.namespaced else {})}}
        entries: list = []
    else:
        live = old.copy()  # a deep copy: pruning edits the merged object in place
        entries = live["metadata"].pop("managedFields", None) or []
    ident = (manager, "Apply", "", subresource or "")
    others, mine = mf.subtract(entries, set(), ident)
    merged = merge(live, cfg, node)
    if mine is not None:
        owned = set(applied)
        for e in others:
            owned |= fs.from_fields_v1(e.get("fieldsV1"))
        merged = prune(merged, fs.from_fields_v1(mine.get("fieldsV1")), owned)
    applied = mf.clean(applied, rt.has_status, subresource)
    c = fs.compare(live, merged, node)
    changed = mf.clean(c.added | c.modified, rt.has_status, subresource)
    conflicts = [(e, p) for e in others for p in sorted(fs.from_fields_v1(e.get("fieldsV1")) & changed)]
    if conflicts and not force and manager == "kubectl":  # lastAppliedManager: moving off client-side apply
        allowed = _agreed_with_last_applied(rt, live, node)
        conflicts = [(e, p) for e, p in conflicts if p not in allowed]
        force = not conflicts
    if conflicts and not force:
        raise conflict_error(conflicts)
    removed = mf.clean(c.removed, rt.has_status, subresource)
    others, _ = mf.subtract(others, (changed if force else set()) | removed)
    same = merged == live
    when = mine.get("time") if same and mine is not None else None
    entry = mf.make_entry(manager, "Apply", rt.api_version, applied, subresource, when)
    managed = mf.sort_entries(others + ([entry] if applied else []))
    annotations = (merged.get("metadata") or {}).get("annotations") or {}
    if manager == "kubectl" and annotations.get(LAST_APPLIED):  # lastAppliedUpdater keeps it in step
        merged["metadata"]["annotations"] = {**annotations, LAST_APPLIED: _last_applied(cfg)}
    if old is None:
        merged.setdefault("metadata", {})["name"] = name
        return registry.create(rt, ns, merged, dry_run=dry_run, managed=managed), True
    merged["metadata"]["resourceVersion"] = old.obj["metadata"]["resourceVersion"]
    return registry.update(rt, ns, name, merged, subresource=subresource, dry_run=dry_run, old=old,
                           managed=managed), False
