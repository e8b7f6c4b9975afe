"""Discovery and OpenAPI documents - just enough for kubectl and the official client.

kubectl (1.27+) resolves resources through legacy discovery (``/api``, ``/apis``,
``/api/v1``, ``/apis/<g>/<v>``; it asks for aggregated discovery first and falls back
when it gets a plain ``APIGroupList``).

``kubectl apply`` validates manifests by default.  It first asks the OpenAPI v3 document
of the group-version whether the PATCH operation of the kind accepts the
``fieldValidation`` query parameter; when it does, validation is left to the server and
kubectl never downloads the (protobuf!) OpenAPI v2 document.  So the sandbox serves a
minimal v3 document per group-version declaring exactly that.  The PATCH operations
deliberately do *not* list ``application/strategic-merge-patch+json``: that would make
kubectl compute its apply patch from full v3 schemas; without it kubectl falls back to
its compiled-in Go types, which know every kind the sandbox serves.
"""
from __future__ import annotations

import hashlib

from .resources import TYPES, ResourceType, groups

K8S_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-sandbox", "gitCommit": "0" * 40,
               "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.4",
               "compiler": "gc", "platform": "linux/amd64"}

_SUB_KINDS = {"status": None, "scale": ("autoscaling", "v1", "Scale"), "log": None, "finalize": None}
_SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "log": ["get"],
              "finalize": ["update"]}
_SUB_KINDS.update(exec=("", "", "PodExecOptions"), attach=("", "", "PodAttachOptions"),
                  portforward=("", "", "PodPortForwardOptions"))
_SUB_VERBS.update({s: ["create", "get"] for s in ("exec", "attach", "portforward")})  # sandbox/streams.py


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> dict:
    vs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": vs, "preferredVersion": vs[0]}


def api_group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in groups().items() if g]}


def api_group(name: str) -> dict | None:
    vs = groups().get(name)
    if not name or not vs:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, vs)}


def _storage_hash(rt: ResourceType) -> str:
    return hashlib.sha256(f"{rt.api_version}/{rt.kind}".encode()).digest()[:8].hex()


def resource_list(group: str, version: str) -> dict | None:
    rts = [t for t in TYPES if t.group == group and t.version == version]
    if not rts:
        return None
    resources = []
    for t in rts:
        r = {"name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
             "verbs": list(t.verbs), "storageVersionHash": _storage_hash(t)}
        if t.short_names:
            r["shortNames"] = list(t.short_names)
        if t.categories:
            r["categories"] = list(t.categories)
        resources.append(r)
        for sub in t.subresources:
            sr = {"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced,
                  "kind": t.kind, "verbs": _SUB_VERBS[sub]}
            if _SUB_KINDS.get(sub):
                g, v, k = _SUB_KINDS[sub]
                sr.update({key: x for key, x in (("group", g), ("version", v), ("kind", k)) if x})
            resources.append(sr)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_v3_root() -> dict:
    paths = {}
    for g, vs in groups().items():
        for v in vs:
            p = _gv_path(g, v)
            digest = hashlib.sha256(p.encode() + b"sandbox-1").hexdigest()[:32].upper()
            paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_gv(group: str, version: str) -> dict | None:
    rts = [t for t in TYPES if t.group == group and t.version == version]
    if not rts:
        return None
    prefix = "/" + _gv_path(group, version)
    paths = {}
    params = [{"name": "fieldValidation", "in": "query", "uniqueItems": True, "schema": {"type": "string"},
               "description": "Strict, Warn or Ignore"},
              {"name": "fieldManager", "in": "query", "uniqueItems": True, "schema": {"type": "string"}},
              {"name": "dryRun", "in": "query", "uniqueItems": True, "schema": {"type": "string"}}]
    for t in rts:
        item = f"{prefix}/namespaces/{{namespace}}/{t.plural}/{{name}}" if t.namespaced else f"{prefix}/{t.plural}/{{name}}"
        gvk = {"group": t.group, "version": t.version, "kind": t.kind}
        ref = {"$ref": f"#/components/schemas/{t.kind}"}
        paths[item] = {
            "get": {"operationId": f"read{t.kind}", "responses": {"200": {"description": "OK",
                    "content": {"application/json": {"schema": ref}}}},
                    "x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
            "put": {"operationId": f"replace{t.kind}", "parameters": params,
                    "requestBody": {"content": {"application/json": {"schema": ref}}, "required": True},
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
                    "x-kubernetes-action": "put", "x-kubernetes-group-version-kind": gvk},
            "patch": {"operationId": f"patch{t.kind}", "parameters": params,
                      "requestBody": {"content": {"application/json-patch+json": {"schema": {"type": "object"}},
                                                  "application/merge-patch+json": {"schema": {"type": "object"}}},
                                      "required": True},
                      "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
                      "x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk},
        }
    schemas = {t.kind: {"type": "object", "x-kubernetes-group-version-kind": [
        {"group": t.group, "version": t.version, "kind": t.kind}]} for t in rts}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (sandbox)", "version": K8S_VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": schemas}}
