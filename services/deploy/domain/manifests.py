"""Rendered YAML → the Kubernetes objects MAE is willing to apply.

Whatever a template renders is checked here before it is stored or applied:
only the kinds ``policy.KINDS`` allows, each in the application's namespace
(set when absent, refused when it names another: ``policy.check_kind``), MAE's
labels added (the operator and the
cluster service find objects by them), and the Deployment annotated with the
record that applies it (reports are matched to records by it).
"""
from __future__ import annotations

import copy

import yaml

from services.deploy.domain import names, policy
from services.deploy.domain.templates import TemplateRefused

MAX_OBJECTS = 20
# The order the cluster service applies in, used for stable previews too.
APPLY_ORDER = ("ConfigMap", "Secret", "Service", "Deployment", "HorizontalPodAutoscaler", "Ingress")


def parse(text: str) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise TemplateRefused(f"the template does not render valid YAML: {str(exc)[:300]}")
    if not docs:
        raise TemplateRefused("the template renders no objects")
    if len(docs) > MAX_OBJECTS:
        raise TemplateRefused(f"the template renders more than {MAX_OBJECTS} objects")
    return docs


def _where(obj: dict, i: int) -> str:
    name = obj.get("metadata", {}).get("name") if isinstance(obj.get("metadata"), dict) else None
    return f"object {i + 1} ({obj.get('kind', '?')} {name or '?'})"


def check(objects: list, namespace: str, labels: dict) -> list[dict]:
    """Checked copies of ``objects`` with the namespace forced and ``labels`` added."""
    out, seen = [], set()
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise TemplateRefused(f"object {i + 1} is not a mapping")
        where = _where(obj, i)
        kind = obj.get("kind")
        policy.check_kind(obj, namespace, policy.object_ref(obj))
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise TemplateRefused(f"{where}: metadata.name is required")
        if not names_ok(meta["name"]):
            raise TemplateRefused(f"{where}: metadata.name {meta['name']!r} is not a DNS name")
        if (kind, meta["name"]) in seen:
            raise TemplateRefused(f"{where}: rendered twice")
        seen.add((kind, meta["name"]))
        obj = copy.deepcopy(obj)
        obj.pop("status", None)
        meta = obj["metadata"]
        for server_field in ("uid", "resourceVersion", "generation", "creationTimestamp",
                             "managedFields", "selfLink", "ownerReferences", "finalizers"):
            meta.pop(server_field, None)
        meta["namespace"] = namespace
        for key in ("labels", "annotations"):
            if meta.get(key) is None:
                meta[key] = {}
            if not isinstance(meta[key], dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in meta[key].items()):
                raise TemplateRefused(f"{where}: metadata.{key} must map text to text")
        meta["labels"].update(labels)
        if kind == "Deployment":
            _check_deployment(obj, where, labels)
        out.append(obj)
    return out


def names_ok(name: str) -> bool:
    import re

    return len(name) <= 253 and bool(re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", name))


def _check_deployment(obj: dict, where: str, labels: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("template"), dict):
        raise TemplateRefused(f"{where}: spec.template is required")
    template_meta = spec["template"].setdefault("metadata", {}) or {}
    spec["template"]["metadata"] = template_meta
    pod_labels = template_meta.setdefault("labels", {}) or {}
    template_meta["labels"] = pod_labels
    # Pods carry MAE's labels too (the operator watches pods by them); adding
    # labels to pods never breaks the selector, which matches a subset.
    pod_labels.update(labels)
    spec.setdefault("progressDeadlineSeconds", 600)
    pod_spec = spec["template"].get("spec")
    if not isinstance(pod_spec, dict) or not isinstance(pod_spec.get("containers"), list) \
            or not pod_spec["containers"]:
        raise TemplateRefused(f"{where}: spec.template.spec.containers is required")
    # Pods get no API credentials unless the template asks for them (the default service
    # account's token, the only one the policy allows).
    pod_spec.setdefault("automountServiceAccountToken", False)


def check_version_objects(objects: list[dict], deployment_name: str) -> None:
    """A version renders exactly one Deployment, named as the contract says."""
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    if len(deployments) != 1:
        raise TemplateRefused(f"a version template must render exactly one Deployment "
                              f"(it renders {len(deployments)})")
    if deployments[0]["metadata"]["name"] != deployment_name:
        raise TemplateRefused(f"the Deployment must be named {deployment_name!r} (use {{{{ name }}}})")


def stamp_record(objects: list[dict], record_id: int) -> list[dict]:
    """Copies whose Deployments say which record applied them (reports come back with it)."""
    out = copy.deepcopy(objects)
    for obj in out:
        if obj["kind"] == "Deployment":
            obj["metadata"].setdefault("annotations", {})[names.RECORD_ID] = str(record_id)
    return out


def ordered(objects: list[dict]) -> list[dict]:
    return sorted(objects, key=lambda o: APPLY_ORDER.index(o["kind"]) if o["kind"] in APPLY_ORDER else 99)


def deployment_of(objects: list[dict]) -> dict | None:
    return next((o for o in objects if o["kind"] == "Deployment"), None)


def identity(obj: dict) -> dict:
    """What a delete request needs to name an object."""
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
            "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"]}}
