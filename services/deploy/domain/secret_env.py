"""A version's ``secret_env``: environment variables whose values MAE takes but never shows.

* In: ``"secret_env": {"NAME": "value"}`` on create and update. Names as for ``env``
  (``[A-Za-z_][A-Za-z0-9_]*``, at most 253 characters), values text of at most 64 KiB,
  at most 100 names (512 KiB in all: a Secret holds 1 MiB). A name also in ``env`` is
  refused: a variable comes from one place. On update, a given ``secret_env`` is merged
  (a key whose value is null is deleted, keys not given are kept; null clears the set).
* Out: answers say ``"secret_env": ["NAME", ...]`` — the names, never a value.
* At rest: the object as JSON, sealed with the secret box bound to the version's row id
  (``deploy-version:<id>:secret_env``), plus the names in clear. Deleting the version
  clears both; deleting the app deletes the row (``lifecycle.forget_app``).
* To pods: MAE renders a Secret of type Opaque named ``<service>-<version>-secret-env``
  beside the Deployment, with MAE's labels, which the pods read (the built-in template:
  ``env[].valueFrom.secretKeyRef`` per key; a user template gets ``secret_env_name`` and
  ``secret_env_keys`` and must reference it). The rendered — and stored, and previewed —
  Secret has placeholders; the values join the apply request as it leaves
  (``attach``; ``shared/secret_delivery.py``). A version that had secrets keeps an empty
  Secret after they are all removed, so the old values leave the cluster at the next deploy.
* Rollouts: the pod template carries ``mae.io/secret-env-checksum``, a hash of the sealed
  blob (not of the values), so a deploy after a change rolls the pods; the blob is
  re-sealed only when the values change. Rollback and re-sent requests use the version's
  values as they are now.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.deploy.domain import names
from services.deploy.domain.templates import TemplateRefused
from services.deploy.models import Record, Version
from shared import secret_delivery
from shared.errors import Conflict, Invalid
from shared.secretbox import SecretBoxError

log = logging.getLogger(__name__)

FIELD = "secret_env"
MAX_KEYS = 100
MAX_NAME = 253
MAX_VALUE_BYTES = 64 * 1024
MAX_TOTAL_BYTES = 512 * 1024
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")


# -- what a body may say ---------------------------------------------------------------

def check(value) -> dict[str, str]:
    """The set a body gives, checked. Refusals name the key (cut short), never a value."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid("'secret_env' must be an object of NAME: value pairs (its values are write-only: "
                      "answers list the names only).", {"field": FIELD})
    if len(value) > MAX_KEYS:
        raise Invalid(f"'secret_env' may hold at most {MAX_KEYS} variables.", {"field": FIELD})
    out, total = {}, 0
    for name, text in value.items():
        if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME.match(name):
            shown = name[:64] if isinstance(name, str) else name
            raise Invalid(f"{shown!r} is not a valid environment variable name for 'secret_env' (letters, "
                          f"digits and '_', not starting with a digit, at most {MAX_NAME} characters).",
                          {"field": FIELD})
        if text is None:  # null: this name is not (or no longer) in the set
            continue
        if not isinstance(text, str):
            raise Invalid(f"The value of secret_env {name!r} must be text.", {"field": f"{FIELD}.{name}"})
        size = len(text.encode())
        if size > MAX_VALUE_BYTES:
            raise Invalid(f"The value of secret_env {name!r} is larger than 64 KiB.", {"field": f"{FIELD}.{name}"})
        total += size
        out[name] = text
    if total > MAX_TOTAL_BYTES:
        raise Invalid("The values of 'secret_env' are larger than 512 KiB in all.", {"field": FIELD})
    return out


def check_apart(env: list[dict], keys) -> None:
    """A variable comes from ``env`` or from ``secret_env``, not both (422 naming it)."""
    both = sorted({item["name"] for item in env or []} & set(keys))
    if both:
        raise Invalid(f"{both[0]!r} is both in 'env' and in 'secret_env'; a variable comes from one of them "
                      "(remove it from one).", {"field": f"{FIELD}.{both[0]}", "names": both})


# -- at rest ---------------------------------------------------------------------------

def _context(version_id: int) -> str:
    return f"deploy-version:{int(version_id)}:secret_env"


def values(box, version: Version) -> dict[str, str]:
    """The version's values in clear (for the apply request only). Raises SecretBoxError."""
    if not version.secret_env_sealed:
        return {}
    return json.loads(box.decrypt(version.secret_env_sealed, _context(version.id)))


def names_of(version: Version) -> list[str]:
    return sorted(version.secret_env_keys or [])


def store(box, version: Version, given: dict[str, str] | None) -> dict | None:
    """Make ``given`` the version's set (``None``: keep it). The row must have its id. Returns
    what changed, by name (``{"added", "removed", "changed"}``), or None when nothing did."""
    if given is None:
        return None
    if box is None:
        raise RuntimeError("secret_env needs the secret box")
    had = version.secret_env_sealed is not None
    before = values(box, version) if had else {}
    if given == before:
        return None  # the same blob: the same checksum, no rollout
    if not given and not had:
        return None
    version.secret_env_sealed = box.encrypt(json.dumps(given, sort_keys=True, separators=(",", ":")),
                                            _context(version.id))
    version.secret_env_keys = sorted(given)
    return {"added": sorted(set(given) - set(before)), "removed": sorted(set(before) - set(given)),
            "changed": sorted(k for k in set(given) & set(before) if given[k] != before[k])}


def inherit(box, version: Version, latest: Version | None) -> None:
    """A version made from a CI build gets the secrets of the version it copies its
    configuration from, sealed anew for its own row."""
    if latest is not None and latest.secret_env_sealed:
        store(box, version, values(box, latest))


def forget(version: Version) -> None:
    """The sealed values and the names go (a deleted version; a deleted name made again starts bare)."""
    version.secret_env_sealed = None
    version.secret_env_keys = None


# -- rendering ---------------------------------------------------------------------------

def checksum(sealed: str) -> str:
    return hashlib.sha256(sealed.encode()).hexdigest()[:32]


def shape(version: Version | None, service: str, name: str, keys=None) -> dict | None:
    """What rendering needs — the Secret's name, the names, a checksum — or None when the
    version has no secret_env. ``keys`` (a set about to be stored) replaces the row's."""
    if keys is None:
        if version is None or version.secret_env_sealed is None:
            return None
        return {"name": names.secret_env_name(service, name), "keys": names_of(version),
                "checksum": checksum(version.secret_env_sealed)}
    if not keys and (version is None or version.secret_env_sealed is None):
        return None
    return {"name": names.secret_env_name(service, name), "keys": sorted(keys), "checksum": "0" * 32}


def manifest(namespace: str, secret: dict) -> dict:
    """MAE's Secret for the version, with placeholders where the values go."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret["name"], "namespace": namespace,
                         "annotations": {secret_delivery.MARKER: "values travel sealed with each apply",
                                         secret_delivery.CHECKSUM: secret["checksum"]}},
            "stringData": {key: secret_delivery.PLACEHOLDER for key in secret["keys"]}}


def _dicts(items) -> list[dict]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def referenced(pod_spec: dict, name: str) -> bool:
    """Whether the pods read Secret ``name``: envFrom, env valueFrom or a volume."""
    for container in _dicts(pod_spec.get("containers")) + _dicts(pod_spec.get("initContainers")):
        for source in _dicts(container.get("envFrom")):
            if isinstance(source.get("secretRef"), dict) and source["secretRef"].get("name") == name:
                return True
        for item in _dicts(container.get("env")):
            ref = (item.get("valueFrom") or {}) if isinstance(item.get("valueFrom"), dict) else {}
            if isinstance(ref.get("secretKeyRef"), dict) and ref["secretKeyRef"].get("name") == name:
                return True
    for volume in _dicts(pod_spec.get("volumes")):
        if isinstance(volume.get("secret"), dict) and volume["secret"].get("secretName") == name:
            return True
    return False


def wire(objects: list[dict], secret: dict) -> None:
    """Stamp the checksum on the pod template (so a change rolls the pods), and refuse a
    template whose pods would not read the Secret while it holds something."""
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    template = deployment["spec"]["template"]
    meta = template.setdefault("metadata", {})
    annotations = meta.get("annotations")
    if annotations is None:
        annotations = meta["annotations"] = {}
    if not isinstance(annotations, dict):
        raise TemplateRefused("spec.template.metadata.annotations of the Deployment must map text to text")
    annotations[secret_delivery.CHECKSUM] = secret["checksum"]
    if secret["keys"] and not referenced(template.get("spec") or {}, secret["name"]):
        raise TemplateRefused(
            f"the version has secret_env but the template's pods do not read Secret {secret['name']!r}: "
            "add envFrom: [{secretRef: {name: <secret_env_name>}}] to the container (the template "
            "variables secret_env_name and secret_env_keys say what to reference)")


def refresh(objects: list[dict], secret: dict | None) -> list[dict]:
    """A past record's manifests brought to the version's current secret_env (rollback):
    its Secret lists today's names and both checksums are today's. A record whose Secret
    can no longer be filled (the version's secrets are gone) is refused."""
    out = copy.deepcopy(objects)
    if not any(secret_delivery.is_marked(o) for o in out):
        return out
    if secret is None:
        raise Conflict("The record's Secret for secret_env can no longer be filled: the version and its "
                       "secrets were deleted. Create the version again and deploy it.")
    for obj in out:
        if secret_delivery.is_marked(obj):
            obj.pop("data", None)
            obj["stringData"] = {key: secret_delivery.PLACEHOLDER for key in secret["keys"]}
            obj["metadata"]["annotations"][secret_delivery.CHECKSUM] = secret["checksum"]
        elif obj.get("kind") == "Deployment":
            annotations = obj["spec"]["template"].setdefault("metadata", {}).setdefault("annotations", {})
            annotations[secret_delivery.CHECKSUM] = secret["checksum"]
    return out


# -- on the way out ------------------------------------------------------------------------

def attach(db: Session, box, request: dict) -> dict:
    """The apply request with its marked Secret's values sealed into it (``shared/secret_delivery``).
    The values are the version's as they are now; a version that is gone (or an app that is)
    adds nothing, and the cluster service then refuses the request, visibly."""
    if request.get("action") != "apply":
        return request
    marked = [m for m in request.get("manifests") or [] if secret_delivery.is_marked(m)]
    if not marked:
        return request
    record = db.get(Record, request.get("record_id")) if isinstance(request.get("record_id"), int) else None
    if record is None or record.deleted_app_id is not None or not record.service or not record.version:
        return request
    version = db.scalar(select(Version).where(Version.app == record.app, Version.service == record.service,
                                              Version.name == record.version, Version.deleted_at.is_(None)))
    if version is None or version.secret_env_sealed is None:
        return request
    try:
        clear = values(box, version)
    except (SecretBoxError, ValueError):
        log.warning("a version's secret_env does not open; set it again",
                    extra={"app": record.app, "service": record.service, "version": record.version})
        return request
    return secret_delivery.seal(box, request, marked[0]["metadata"]["name"], clear)
