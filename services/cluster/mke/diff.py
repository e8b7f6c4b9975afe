"""Does the live object already have what we want, and if not, what do we send?

The API server fills in defaults (strategy, terminationMessagePath, clusterIP,
status ...), so "equal" would see a difference on every apply. What counts is
whether every field *we set* — labels, annotations and the kind's own fields
(spec, data) — has our value on the live object ("desired is contained in
live"). Keys we set last time and no longer want would survive that check, so
each object carries what we last applied in the annotation ``mae.io/last-applied``
(like kubectl's), and such keys count as differences too.

Identical re-applies therefore write nothing and bump no generation.
Pure functions, no I/O: unit-tested in ``tests/unit/test_mke_diff.py``.
"""
from __future__ import annotations

import base64
import copy
import json

from services.cluster.mke.kinds import Kind

LAST_APPLIED = "mae.io/last-applied"
MISSING = object()


def normalize(manifest: dict) -> dict:
    """The manifest as the API server will store it (where that is knowable)."""
    manifest = copy.deepcopy(manifest)
    if manifest.get("kind") == "Secret" and manifest.get("stringData"):
        # stringData is write-only: the server folds it into data (base64).
        data = dict(manifest.get("data") or {})
        for key, value in manifest.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        manifest["data"] = data
    return manifest


def ours(manifest: dict, kind: Kind) -> dict:
    """The parts of a manifest MAE sets (what ``mae.io/last-applied`` remembers)."""
    meta = manifest.get("metadata") or {}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    part = {"labels": dict(meta.get("labels") or {}), "annotations": annotations}
    for field in kind.fields:
        if field in manifest:
            part[field] = manifest[field]
    return part


def encode_last_applied(part: dict) -> str:
    return json.dumps(part, sort_keys=True, separators=(",", ":"))


def last_applied_of(live: dict) -> dict:
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}  # someone edited it by hand: compare without it
    return value if isinstance(value, dict) else {}


def with_last_applied(manifest: dict, kind: Kind) -> dict:
    """The manifest to send on create: ours plus the annotation that remembers it."""
    manifest = normalize(manifest)
    meta = manifest.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    annotations[LAST_APPLIED] = encode_last_applied(ours(manifest, kind))
    meta["annotations"] = annotations
    return manifest


def contains(want, have) -> bool:
    """Every value in ``want`` is present, equal, in ``have`` (dicts recursively)."""
    if want is None:
        return have is None or have is MISSING
    if isinstance(want, dict):
        if have is None or have is MISSING:
            return not want
        if not isinstance(have, dict):
            return False
        return all(contains(v, have.get(k, MISSING)) for k, v in want.items())
    if isinstance(want, list):
        if have is None or have is MISSING:
            return not want
        if not isinstance(have, list) or len(want) != len(have):
            return False
        return all(contains(w, h) for w, h in zip(want, have))
    if have is MISSING:
        return False
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have
    return want == have


def removed_keys(previous, current, path: str = "") -> list[str]:
    """Paths of dict keys present in ``previous`` and gone from ``current``."""
    if not isinstance(previous, dict):
        return []
    found = []
    for key, value in previous.items():
        here = f"{path}.{key}" if path else key
        if not isinstance(current, dict) or key not in current:
            found.append(here)
        else:
            found.extend(removed_keys(value, current[key], here))
    return found


def _get(obj, dotted: str):
    for key in dotted.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return MISSING
        obj = obj[key]
    return obj


def _live_part(live: dict, kind: Kind) -> dict:
    meta = live.get("metadata") or {}
    part = {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}}
    for field in kind.fields:
        part[field] = live.get(field, MISSING)
    return part


def differences(desired: dict, live: dict, kind: Kind) -> list[str]:
    """Why ``live`` must be updated to become ``desired`` (empty: it need not be)."""
    want = ours(normalize(desired), kind)
    have = _live_part(live, kind)
    paths = []
    for key, value in want.items():
        if not contains(value, have.get(key, MISSING)):
            paths.append(key if not isinstance(value, dict) else _first_difference(value, have.get(key), key))
    for path in removed_keys(last_applied_of(live), want):
        # Only a difference while the live object still has it.
        if _get(have, path) is not MISSING:
            paths.append(path)
    return paths


def _first_difference(want: dict, have, path: str) -> str:
    if not isinstance(have, dict):
        return path
    for key, value in want.items():
        if not contains(value, have.get(key, MISSING)):
            sub = have.get(key)
            return _first_difference(value, sub, f"{path}.{key}") if isinstance(value, dict) else f"{path}.{key}"
    return path


def _merge(live, want, previous):
    """Our dict values over the live ones; keys we set before and dropped are removed;
    lists and scalars are ours entirely (the server re-defaults inside them)."""
    if not isinstance(want, dict) or not isinstance(live, dict):
        return copy.deepcopy(want)
    merged = copy.deepcopy(live)
    previous = previous if isinstance(previous, dict) else {}
    for key in previous:
        if key not in want:
            merged.pop(key, None)
    for key, value in want.items():
        merged[key] = _merge(live.get(key), value, previous.get(key))
    return merged


def updated(live: dict, desired: dict, kind: Kind) -> dict:
    """The body of the PUT that turns ``live`` into ``desired`` (keeps resourceVersion,
    so a concurrent writer makes it fail with 409 instead of being overwritten)."""
    desired = normalize(desired)
    want = ours(desired, kind)
    previous = last_applied_of(live)
    body = copy.deepcopy(live)
    body.pop("status", None)
    meta = body.setdefault("metadata", {})
    labels = _merge(meta.get("labels") or {}, want["labels"], previous.get("labels"))
    annotations = _merge(meta.get("annotations") or {}, want["annotations"], previous.get("annotations"))
    annotations[LAST_APPLIED] = encode_last_applied(want)
    meta["labels"], meta["annotations"] = labels, annotations
    for field in kind.fields:
        if field in want:
            body[field] = _merge(live.get(field), want[field], previous.get(field))
        elif field in previous:
            body.pop(field, None)
    return body
