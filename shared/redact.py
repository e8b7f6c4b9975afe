"""Secret values never leave MAE in a preview or a diff (SECURITY.md: nothing a user can
read shows a Secret's value). What a person needs from a preview is whether a key is
added, removed, changed or unchanged — so values become markers, compared where both
the new and the live value are known (the cluster service), and nowhere else.
"""
from __future__ import annotations

import base64

from shared.secret_delivery import CHECKSUM

REDACTED = "<redacted>"
CHANGED = "<redacted: differs from the new value>"


def _is_secret(obj) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "Secret" and obj.get("apiVersion", "v1") == "v1"


def encoded(obj: dict) -> dict[str, str]:
    """A Secret's values as the API server stores them: ``data`` (base64) with ``stringData``
    merged in (it wins, as on the server)."""
    out = {k: v for k, v in (obj.get("data") or {}).items()}
    for k, v in (obj.get("stringData") or {}).items():
        out[k] = base64.b64encode(str(v).encode()).decode()
    return out


def _checksum(obj) -> str | None:
    """``mae.io/secret-env-checksum`` of a Secret (shared/secret_delivery.py), if it has one."""
    if not _is_secret(obj):
        return None
    return ((obj.get("metadata") or {}).get("annotations") or {}).get(CHECKSUM)


def desired(obj: dict) -> dict:
    """The manifest as a preview shows it: every value of a Secret is ``<redacted>``, in
    ``data`` (``stringData`` folded in, so it lines up with what the cluster keeps)."""
    if not _is_secret(obj):
        return obj
    out = {k: v for k, v in obj.items() if k not in ("data", "stringData")}
    values = encoded(obj)
    if values:
        out["data"] = {k: REDACTED for k in values}
    return out


def live(obj: dict | None, new: dict | None) -> dict | None:
    """The live object as a preview shows it, its Secret values replaced by ``<redacted>``
    where they equal the new manifest's and by a "differs" marker where they do not."""
    if obj is None or not _is_secret(obj):
        return obj
    mine = encoded(new) if _is_secret(new) else {}
    out = {k: v for k, v in obj.items() if k not in ("data", "stringData")}
    values = encoded(obj)
    sealed = _checksum(new)
    if values and sealed is not None:
        # A version's secret_env Secret: the new manifest has placeholders, not values, but
        # the checksum of the sealed values says whether they are the ones the cluster has.
        same = sealed == _checksum(obj)
        out["data"] = {k: REDACTED if same and k in mine else CHANGED for k in values}
    elif values:
        out["data"] = {k: REDACTED if mine.get(k) == v else CHANGED for k, v in values.items()}
    annotations = (out.get("metadata") or {}).get("annotations") or {}
    if "kubectl.kubernetes.io/last-applied-configuration" in annotations or "mae.io/last-applied" in annotations:
        out["metadata"] = {**out["metadata"], "annotations": {
            k: (REDACTED if k in ("kubectl.kubernetes.io/last-applied-configuration", "mae.io/last-applied") else v)
            for k, v in annotations.items()}}
    return out
