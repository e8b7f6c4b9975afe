"""Apply and delete lists of manifests on one cluster, and say what happened.

The callback interface (``Callback`` below) has three functions — done, log, delete — that
do not mean success or failure: ``log`` is called for every line worth showing
in a deploy record's log, and exactly one of ``done`` (after an apply) or
``delete`` (after a delete) is called with the result, whether it went well or
not. What to do with them (events on the bus) is the service's business.

A result is ``{"ok", "objects": [...], "error": None | {"reason", "message", "code"}}``
with one entry per object handled (operation created / updated / unchanged /
deleted / absent, uid, generation, resource_version), as docs/contracts.md says.
The first failure stops the list: later objects (an Ingress routing to a Service
that failed) would only fail in a more confusing way.
"""
from __future__ import annotations

import time
from typing import Protocol

from services.cluster.mke import diff
from services.cluster.mke.client import ClusterClient, ClusterError
from services.cluster.mke.kinds import kind_of, ordered
from shared.retry import backoff_delays

# Read-diff-update rounds when someone else writes the object in between (409 on a stale
# resourceVersion). On a real cluster a Deployment mid-rollout has its status written by
# the controllers several times a second, and the API server checks the version before
# it validates: three immediate rounds were not enough. Pauses 20 ms doubling to 0.64 s
# (about 1.3 s in all), like client-go's RetryOnConflict.
CONFLICT_RETRIES = 7
CONFLICT_BACKOFF = 0.02


class Callback(Protocol):
    def log(self, level: str, line: str) -> None: ...

    def done(self, result: dict) -> None: ...

    def delete(self, result: dict) -> None: ...


def _entry(manifest: dict, operation: str, live: dict | None) -> dict:
    meta = (live or {}).get("metadata") or {}
    want = manifest.get("metadata") or {}
    return {"kind": manifest.get("kind"), "name": want.get("name"),
            "namespace": want.get("namespace") or meta.get("namespace"),
            "operation": operation, "uid": meta.get("uid"),
            "generation": meta.get("generation"), "resource_version": meta.get("resourceVersion")}


def _label(manifest: dict) -> str:
    meta = manifest.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{manifest.get('kind')} {where}{meta.get('name')}"


def _check(manifest, namespace: str | None):
    if not isinstance(manifest, dict):
        raise ClusterError("Invalid", "A manifest must be a JSON object.", 422)
    try:
        kind = kind_of(manifest)
    except KeyError:
        raise ClusterError("Invalid", f"MAE does not apply objects of kind {manifest.get('kind')!r}.", 422)
    meta = manifest.get("metadata") or {}
    if not meta.get("name"):
        raise ClusterError("Invalid", f"The {kind.kind} has no metadata.name.", 422)
    if kind.namespaced and namespace and meta.get("namespace") not in (None, namespace):
        raise ClusterError("Forbidden", f"{_label(manifest)} is outside namespace {namespace!r}.", 403)
    return kind


MANAGED_BY = "app.kubernetes.io/managed-by"
APP = "mae.io/app"


def is_ours(live: dict, manifest: dict) -> bool:
    """Whether the live object carries MAE's mark — and, when the manifest names its app,
    that same app's. MAE never replaces or deletes an object without it: it was made by
    someone else (a person with kubectl, another tool, another tenant)."""
    labels = ((live or {}).get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY) != "mae":
        return False
    app = (((manifest or {}).get("metadata") or {}).get("labels") or {}).get(APP)
    return app is None or labels.get(APP) == app


def not_ours(manifest: dict) -> ClusterError:
    return ClusterError("NotManaged", f"{_label(manifest)} exists on the cluster but was not created by MAE "
                                      f"for this application (it lacks MAE's label {MANAGED_BY}=mae or "
                                      f"belongs to another app); MAE does not replace or delete it", 409)


def apply_one(client: ClusterClient, manifest: dict, namespace: str | None = None,
              seen: dict | None = None) -> tuple[dict, list[str]]:
    """Create, update or leave one object; returns its result entry and what differed.
    ``seen``: objects just read by (kind, namespace, name) — the first attempt uses them
    instead of reading again."""
    kind = _check(manifest, namespace)
    manifest = diff.normalize(manifest)
    meta = manifest.setdefault("metadata", {})
    if kind.namespaced:
        meta["namespace"] = meta.get("namespace") or namespace
    ns, name = meta.get("namespace"), meta["name"]
    manifest.setdefault("apiVersion", kind.api_version)
    pauses = backoff_delays(CONFLICT_RETRIES, base=CONFLICT_BACKOFF, cap=1.0)
    for attempt in range(CONFLICT_RETRIES):
        if attempt:
            time.sleep(next(pauses, CONFLICT_BACKOFF))
        key = (kind.kind, ns, name)
        live = seen.pop(key) if seen and key in seen and not attempt else client.get(kind, ns, name)
        if live is None:
            try:
                return _entry(manifest, "created", client.create(kind, ns, diff.with_last_applied(manifest, kind))), []
            except ClusterError as exc:
                if exc.code == 409:  # created meanwhile by someone else: diff against theirs
                    continue
                raise
        if not is_ours(live, manifest):
            raise not_ours(manifest)
        changed = diff.differences(manifest, live, kind)
        if not changed:
            return _entry(manifest, "unchanged", live), []
        try:
            return _entry(manifest, "updated", client.replace(kind, ns, name, diff.updated(live, manifest, kind))), changed
        except ClusterError as exc:
            if exc.code == 409:  # stale resourceVersion: someone wrote in between; read again
                continue
            raise
    raise ClusterError("Conflict", f"{_label(manifest)} kept changing while MAE updated it; try again.", 409)


RECORD_ID = "mae.io/record-id"  # stamped on a version's Deployment by the deploy service


def _record_of(obj: dict | None) -> int | None:
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(RECORD_ID)
    return int(value) if value and str(value).isdigit() else None


def newer_record(client: ClusterClient, manifests: list[dict], namespace: str | None,
                 seen: dict | None = None) -> int | None:
    """The record that already applied a newer incarnation of this request's Deployment, if any.

    Requests are fenced by record id: an apply that was delayed (a redelivery after a broker or
    API-server outage, a retry running long) must not overwrite what a later deploy applied.
    What it reads goes into ``seen`` for ``apply_one``."""
    for manifest in manifests:
        mine = _record_of(manifest) if isinstance(manifest, dict) and manifest.get("kind") == "Deployment" else None
        if mine is None:
            continue
        kind = _check(manifest, namespace)
        ns = ((manifest.get("metadata") or {}).get("namespace") or namespace) if kind.namespaced else None
        live = client.get(kind, ns, manifest["metadata"]["name"])
        if seen is not None:
            seen[(kind.kind, ns, manifest["metadata"]["name"])] = live
        theirs = _record_of(live)
        if theirs is not None and theirs > mine:
            return theirs
    return None


def apply(client: ClusterClient, manifests: list[dict], callback: Callback,
          namespace: str | None = None) -> dict:
    objects, error, seen = [], None, {}
    try:
        newer = newer_record(client, list(manifests or []), namespace, seen)
    except ClusterError as exc:
        newer, error = None, exc.as_dict()
        callback.log("error", f"could not read the Deployment on cluster {client.name}: {exc.reason}: {exc.message}")
    if newer is not None:
        error = {"reason": "Superseded", "code": 409,
                 "message": f"record {newer} already applied a newer version of this Deployment; nothing was applied"}
        callback.log("warning", f"Nothing applied on cluster {client.name}: {error['message']}.")
    for manifest in ordered(list(manifests or [])) if error is None else []:
        try:
            entry, changed = apply_one(client, manifest, namespace, seen)
        except ClusterError as exc:
            error = exc.as_dict()
            callback.log("error", f"{_label(manifest) if isinstance(manifest, dict) else 'manifest'} "
                                  f"was refused on cluster {client.name}: {exc.reason}: {exc.message}")
            break
        objects.append(entry)
        what = f"{entry['operation']} {_label({**manifest, 'metadata': {**manifest['metadata'], 'namespace': entry['namespace']}})}"
        if changed:
            what += f" ({', '.join(changed[:5])} changed)"
        if entry.get("generation") is not None:
            what += f" (generation {entry['generation']})"
        callback.log("info", what)
    result = {"ok": error is None, "objects": objects, "error": error}
    callback.done(result)
    return result


def delete(client: ClusterClient, manifests: list[dict], callback: Callback,
           namespace: str | None = None) -> dict:
    objects, error = [], None
    for manifest in ordered(list(manifests or []), reverse=True):
        try:
            kind = _check(manifest, namespace)
            meta = manifest.get("metadata") or {}
            ns = (meta.get("namespace") or namespace) if kind.namespaced else None
            live = client.get(kind, ns, meta["name"])
            if live is not None and not is_ours(live, manifest):
                raise not_ours(manifest)
            gone = client.remove(kind, ns, meta["name"]) if live is not None else None
        except ClusterError as exc:
            error = exc.as_dict()
            callback.log("error", f"deleting {_label(manifest) if isinstance(manifest, dict) else 'manifest'} "
                                  f"failed on cluster {client.name}: {exc.reason}: {exc.message}")
            break
        operation = "deleted" if gone is not None else "absent"
        entry = _entry({**manifest, "metadata": {**meta, "namespace": ns}}, operation, None)
        objects.append(entry)
        callback.log("info", f"{operation} {kind.kind} {(ns + '/') if ns else ''}{meta['name']}")
    result = {"ok": error is None, "objects": objects, "error": error}
    callback.delete(result)
    return result
