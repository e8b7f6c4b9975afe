"""How a version's secret_env values travel from the deploy service to a cluster.

A record stores the manifests it applies, and records are kept for audit, shown in
part, and rolled back to: they must never hold a secret's value (nor a sealed copy,
which would outlive the version's own). So MAE's Secret for a version is stored with
placeholders (``<sealed>``) and marked with the annotation ``mae.io/secret-env``; the
values join the apply request only as it leaves the deploy service (``seal``), sealed
with the secret box for that one request, namespace and Secret
(``secret-env-apply:<request_id>:<namespace>/<name>``), and the cluster service opens
them just before it applies (``fill``). The outbox row and the message on the bus carry
that sealed form only; a request that names a marked Secret but brings no values that
open is refused whole (``Undeliverable``), so a placeholder never reaches a cluster.

``mae.io/secret-env-checksum`` (on the Secret and on the pod template) is a hash of the
version's sealed blob, never of the values: it changes when the values do, so a deploy
after a change rolls the pods, and a preview can tell a changed Secret from an
unchanged one without knowing either's values (``shared/redact.py``).
"""
from __future__ import annotations

import base64
import copy
import json

from shared.secretbox import SecretBoxError

MARKER = "mae.io/secret-env"
CHECKSUM = "mae.io/secret-env-checksum"
PLACEHOLDER = "<sealed>"


class Undeliverable(Exception):
    """A marked Secret without values that open: nothing of the request may be applied.
    The message names the Secret, never a value."""


def is_marked(obj) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "Secret" and \
        MARKER in (((obj.get("metadata") or {}).get("annotations")) or {})


def _name(obj: dict) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def context(request_id: str, namespace: str, name: str) -> str:
    return f"secret-env-apply:{request_id}:{namespace}/{name}"


def seal(box, request: dict, name: str, values: dict[str, str]) -> dict:
    """``request`` with the values of Secret ``name`` sealed for it (a copy)."""
    plain = json.dumps(values, sort_keys=True, separators=(",", ":"))
    sealed = box.encrypt(plain, context(str(request.get("request_id")), str(request.get("namespace")), name))
    return {**request, "secret_env": {"name": name, "sealed": sealed}}


def fill(box, request: dict) -> list[dict]:
    """The request's manifests with the marked Secret's values in ``data`` (a copy); the
    manifests as they are when none is marked. Raises ``Undeliverable``."""
    manifests = list(request.get("manifests") or [])
    marked = [m for m in manifests if is_marked(m)]
    if not marked:
        return manifests
    if len(marked) > 1:
        raise Undeliverable("the request carries more than one Secret for secret_env")
    name = _name(marked[0])
    given = request.get("secret_env")
    if not isinstance(given, dict) or given.get("name") != name or not isinstance(given.get("sealed"), str):
        raise Undeliverable(f"the values of Secret {name} did not come with the request (the version "
                            "or its secret_env is gone); deploy the version again")
    try:
        values = json.loads(box.decrypt(given["sealed"],
                                        context(str(request.get("request_id")), str(request.get("namespace")), name)))
    except (SecretBoxError, ValueError):
        raise Undeliverable(f"the values of Secret {name} do not open here (MAE_SECRET_KEY differs "
                            "between the deploy and cluster services?)")
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        raise Undeliverable(f"the values of Secret {name} are not NAME: text pairs")
    out = []
    for manifest in manifests:
        if manifest is marked[0]:
            manifest = copy.deepcopy(manifest)
            manifest.pop("stringData", None)
            manifest["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())}
        out.append(manifest)
    return out
