"""API machinery: the semantics of get/list/create/update/patch/delete.

This layer sits between HTTP (``api.py``) and storage (``store.py``) and is also what
the simulated controllers call, so a controller write goes through the same rules as a
client write (defaulting, generation, no-op detection, finalizers) - just without
HTTP.  It mirrors the generic registry of the real API server:

* create: generateName, uid, creationTimestamp, generation=1, status reset for types
  with a status subresource, namespace must exist and not be terminating, 409
  AlreadyExists, 422 Invalid with ``details.causes``.
* update: optimistic concurrency on ``metadata.resourceVersion`` (409 Conflict), the
  main resource ignores status and ``/status`` ignores everything but status,
  ``metadata.generation`` is bumped only when the spec changes (for Deployments also
  annotations, as apps/v1 does), and a no-op update writes nothing (no new
  resourceVersion, no watch event) - controllers rely on that to converge.
* delete: finalizers hold an object in "deleting" state (``deletionTimestamp`` set)
  until they are removed; namespaces always go through ``Terminating``; dependents are
  garbage-collected by owner reference (background by default, ``Orphan`` strips the
  references, ``Foreground`` removes dependents first).
"""
from __future__ import annotations

import base64
import json
import os
import random
import time
from datetime import datetime, timezone

from . import managedfields
from . import patch as patchlib
from .resources import NAMESPACES, PODS, SERVICES, TYPES, ResourceType, apply_defaults, validate, IPAllocator
from .selectors import SelectorError, fields_match, labels_match, parse_field_selector, parse_label_selector
from .store import Entry, Store, TooOld, dumps

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


_last_second = [-1, ""]


def rfc3339(ts: float | None = None) -> str:
    """Second-precision UTC timestamp (metav1.Time); memoised per second - it is on
    every write path and strftime is not cheap."""
    sec = int(time.time() if ts is None else ts)
    if sec != _last_second[0]:
        _last_second[0] = sec
        _last_second[1] = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _last_second[1]


def micro_time(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: str | None) -> float:
    if not s:
        return 0.0
    s = s.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in s else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).timestamp()


_UID_CLEAR = ~((0xf000 << 64) | (0xc000 << 48)) & ((1 << 128) - 1)
_UID_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant
_uid_pool: list[int] = []


def new_uid() -> str:
    """``str(uuid.uuid4())`` at a quarter of the cost: random bits from one ``os.urandom``
    call per 64 uids, formatted directly."""
    if not _uid_pool:
        b = os.urandom(16 * 64)
        _uid_pool.extend(int.from_bytes(b[i:i + 16], "big") for i in range(0, len(b), 16))
    h = "%032x" % (_uid_pool.pop() & _UID_CLEAR | _UID_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def random_suffix(n: int = 5) -> str:
    return "".join(random.choice(_NAME_CHARS) for _ in range(n))


class ApiError(Exception):
    """An error that becomes a ``Status`` response."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> dict:
        st = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            st["details"] = self.details
        if not self.reason:
            del st["reason"]
        return st


def _details(rt: ResourceType, name: str, **extra) -> dict:
    d = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    d.update(extra)
    return d


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str = "the object has been modified; please apply your changes to the latest version and try again") -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}', _details(rt, name))


def invalid(rt: ResourceType, name: str, causes: list[dict]) -> ApiError:
    msgs = [f"{c['field']}: {c['message']}" for c in causes]
    joined = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    details = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.kind
    details["causes"] = causes
    return ApiError(422, "Invalid", f'{rt.qualified_kind} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def _strip_rv(obj: dict) -> dict:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    meta.pop("managedFields", None)
    out = dict(obj)
    out["metadata"] = meta
    return out


class Registry:
    def __init__(self, store: Store):
        self.store = store
        self.ips = IPAllocator()
        for e in store.iter(SERVICES.key):
            self.ips.claim((e.obj.get("spec") or {}).get("clusterIP"))
        # Hooks the controllers install: called after an object is really removed.
        self.on_removed: list = []

    # ------------------------------------------------------------------ reads

    def get(self, rt: ResourceType, ns: str, name: str) -> Entry:
        e = self.store.get(rt.key, ns if rt.namespaced else "", name)
        if e is None:
            raise not_found(rt, name)
        return e

    def selectors(self, rt: ResourceType, label_selector: str | None, field_selector: str | None):
        try:
            return parse_label_selector(label_selector), parse_field_selector(field_selector, rt.plural)
        except SelectorError as exc:
            raise bad_request(str(exc))

    def list(self, rt: ResourceType, ns: str | None, label_selector=None, field_selector=None,
             limit: int = 0, cont: str | None = None, exact_rv: str | None = None):
        """Return (entries, resourceVersion, continue, remainingItemCount). A continued list and
        ``exact_rv`` (``resourceVersionMatch=Exact``) read the state at their resourceVersion."""
        lreqs, freqs = self.selectors(rt, label_selector, field_selector)
        start_after = None
        list_rv = self.store.rv
        if exact_rv is not None:
            try:
                list_rv = int(exact_rv)
            except ValueError:
                raise bad_request(f"invalid resource version: {exact_rv!r}") from None
        if cont:
            try:
                token = json.loads(base64.urlsafe_b64decode(cont.encode() + b"==="))
                start_after = tuple(token["start"])
                list_rv = int(token["rv"])
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: illegal base64 data")
            if list_rv < self.store.compacted_rv:
                raise gone("The provided continue parameter is too old to display a consistent list result. "
                           "You can start a new list without the continue parameter, or use the continue token "
                           "in this response to retrieve the remainder of the results. Continuing with the "
                           "provided token results in an inconsistent list - objects that were created, modified, "
                           "or deleted between the time the first chunk was returned and now may show up in the list.")
        try:
            entries = self.store.sorted_entries_at(rt.key, ns if rt.namespaced else None, list_rv)
        except TooOld:
            raise gone("The resourceVersion for the provided list is too old.") from None
        out = []
        more = False
        remaining = 0
        for e in entries:
            if start_after is not None and (e.ns, e.name) <= start_after:
                continue
            obj = e.obj
            if lreqs and not labels_match(lreqs, obj["metadata"].get("labels")):
                continue
            if freqs and not fields_match(freqs, obj):
                continue
            if limit and len(out) >= limit:
                more = True
                remaining += 1
                continue
            out.append(e)
        next_token = None
        if more:
            last = out[-1]
            next_token = base64.urlsafe_b64encode(
                json.dumps({"rv": list_rv, "start": [last.ns, last.name]}).encode()).decode().rstrip("=")
        return out, list_rv, next_token, remaining if more else None

    # ------------------------------------------------------------------ helpers

    def _check_namespace(self, rt: ResourceType, ns: str) -> None:
        if not rt.namespaced:
            return
        nse = self.store.get(NAMESPACES.key, "", ns)
        if nse is None:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        if nse.obj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden",
                           f"unable to create new content in namespace {ns} because it is being terminated",
                           {"name": ns, "kind": "namespaces",
                            "causes": [{"reason": "NamespaceTerminating",
                                        "message": f"namespace {ns} is being terminated",
                                        "field": "metadata.namespace"}]})

    def _check_kind(self, rt: ResourceType, body: dict) -> None:
        av, kind = body.get("apiVersion"), body.get("kind")
        if av and av != rt.api_version:
            raise bad_request(f"the API version in the data ({av}) does not match the expected API version ({rt.api_version})")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")

    def _body_namespace(self, rt: ResourceType, body: dict, ns: str) -> str:
        meta = body["metadata"]
        if not rt.namespaced:
            meta.pop("namespace", None)
            return ""
        bns = meta.get("namespace")
        if bns and bns != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        meta["namespace"] = ns
        return ns

    # ------------------------------------------------------------------ create

    def create(self, rt: ResourceType, ns: str, body: dict, dry_run: bool = False,
               internal: bool = False, managed: list | None = None) -> Entry:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was in an unknown format")
        if not isinstance(body.get("metadata"), dict):
            body["metadata"] = {}
        self._check_kind(rt, body)
        ns = self._body_namespace(rt, body, ns)
        meta = body["metadata"]
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            for _ in range(10):
                name = meta["generateName"] + random_suffix()
                if self.store.get(rt.key, ns, name) is None:
                    break
            meta["name"] = name
        name = meta.get("name") or ""
        if not internal:
            self._check_namespace(rt, ns)
        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(k, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rt.has_status and not internal:
            body.pop("status", None)  # the client's status is dropped; the kind's defaults set its zero values
        if rt is SERVICES:
            self._allocate_service(body, None)
        apply_defaults(rt, body)
        if rt.has_status and not internal:
            status = body.setdefault("status", {})
            for k, v in STATUS_ZERO.get(rt.key, {}).items():
                status.setdefault(k, v)
        if not internal:
            causes = validate(rt, body, None)
            if causes:
                raise invalid(rt, name, causes)
        if self.store.get(rt.key, ns, name) is not None:
            raise already_exists(rt, name)
        self._stamp(rt, None, body, None, internal, managed)
        if rt.key == "pods":
            from .admission import admit_pod  # admission imports this module
            admit_pod(self.store, ns, body)
        if dry_run:
            return Entry(rt.key, ns, name, body)
        if rt is SERVICES:
            self.ips.claim(body["spec"].get("clusterIP"))
        return self.store.put(rt.key, body)

    def _allocate_service(self, obj: dict, old: dict | None) -> None:
        spec = obj.setdefault("spec", {})
        if spec.get("type") == "ExternalName":
            return
        if old is not None and not spec.get("clusterIP"):
            spec["clusterIP"] = (old.get("spec") or {}).get("clusterIP")
        if not spec.get("clusterIP"):
            spec["clusterIP"] = self.ips.allocate()
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            old_ports = {p.get("port"): p.get("nodePort") for p in ((old or {}).get("spec") or {}).get("ports") or []}
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and not p.get("nodePort"):
                    p["nodePort"] = old_ports.get(p.get("port")) or random.randint(30000, 32767)

    # ------------------------------------------------------------------ update

    def update(self, rt: ResourceType, ns: str, name: str, body: dict, subresource: str | None = None,
               dry_run: bool = False, internal: bool = False, old: Entry | None = None,
               managed: list | None = None) -> Entry:
        if not isinstance(body, dict) or not isinstance(body.get("metadata"), dict):
            raise bad_request("the body of the request was in an unknown format")
        self._check_kind(rt, body)
        ns = ns if rt.namespaced else ""
        if old is None:
            old = self.store.get(rt.key, ns, name)
        if old is None:
            raise not_found(rt, name)
        meta = body["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        rv = meta.get("resourceVersion")
        if rv and rv != old.obj["metadata"]["resourceVersion"]:
            raise conflict(rt, name)
        if meta.get("uid") and meta["uid"] != old.obj["metadata"]["uid"]:
            raise conflict(rt, name, f"Precondition failed: UID in precondition: {meta['uid']}, UID in object meta: {old.obj['metadata']['uid']}")
        old_obj = old.obj
        if subresource == "status":
            new = old.shallow()
            if "status" in body:
                new["status"] = body["status"]
            else:
                new.pop("status", None)
            if rt.kind == "Deployment":
                # apps/v1's status strategy lets annotations through: this is how the
                # deployment controller records deployment.kubernetes.io/revision
                # without bumping metadata.generation.
                if meta.get("annotations"):
                    new["metadata"]["annotations"] = meta["annotations"]
                else:
                    new["metadata"].pop("annotations", None)
        else:
            new = body
            new["apiVersion"], new["kind"] = rt.api_version, rt.kind
            self._body_namespace(rt, new, ns)
            meta["name"] = name
            if rt.has_status and not internal:
                if "status" in old_obj:
                    new["status"] = json.loads(dumps(old_obj["status"]))
                else:
                    new.pop("status", None)
        nmeta = new["metadata"]
        ometa = old_obj["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
            if k in ometa:
                nmeta[k] = ometa[k]
            else:
                nmeta.pop(k, None)
        sent_managed = nmeta.pop("managedFields", managedfields.MISSING)
        if rt is SERVICES and subresource != "status":
            self._allocate_service(new, old_obj)
        if subresource != "status":  # status writes share spec with the stored object
            apply_defaults(rt, new)
        if not internal and subresource != "status":
            causes = validate(rt, new, old_obj)
            if causes:
                raise invalid(rt, name, causes)
        self._stamp(rt, old_obj, new, subresource, internal, managed, sent_managed)
        if ometa.get("deletionTimestamp") and len(nmeta.get("finalizers") or []) > len(ometa.get("finalizers") or []):
            new_f = set(nmeta.get("finalizers") or []) - set(ometa.get("finalizers") or [])
            raise invalid(rt, name, [{"reason": "FieldValueForbidden", "field": "metadata.finalizers",
                                      "message": f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {sorted(new_f)}"}])
        if rt.has_generation and subresource != "status":
            changed = new.get("spec") != old_obj.get("spec")
            if rt.kind == "Deployment":
                changed = changed or nmeta.get("annotations") != ometa.get("annotations")
            if changed:
                nmeta["generation"] = ometa.get("generation", 1) + 1
        nmeta["resourceVersion"] = ometa["resourceVersion"]
        if new == old_obj:
            return old  # no-op: no new resourceVersion, no event
        if dry_run:
            return Entry(rt.key, ns, name, new)
        if nmeta.get("deletionTimestamp") and not nmeta.get("finalizers") and not (
                rt is NAMESPACES and (new.get("spec") or {}).get("finalizers")):
            return self._remove(rt, ns, name)
        return self.store.put(rt.key, new)

    @staticmethod
    def _stamp(rt: ResourceType, old: dict | None, new: dict, subresource: str | None, internal: bool,
               managed: list | None, sent=managedfields.MISSING) -> None:
        """metadata.managedFields of a write: given (server-side apply), recorded as the request's
        field manager's Update, or kept as they were (controller writes)."""
        meta = new["metadata"]
        manager, label = (None, None) if internal else (managedfields.REQUEST_MANAGER.get() or (None, None))
        if managed is not None or manager is None:
            kept = managed if managed is not None else (old or {}).get("metadata", {}).get("managedFields")
            if kept:
                meta["managedFields"] = kept
            else:
                meta.pop("managedFields", None)
        elif old is None:
            managedfields.stamp_create(rt, new, manager)
        else:
            managedfields.stamp_update(rt, old, new, subresource, manager, sent, label)

    def patch(self, rt: ResourceType, ns: str, name: str, content_type: str, raw: bytes,
              subresource: str | None = None, dry_run: bool = False) -> Entry:
        ns = ns if rt.namespaced else ""
        old = self.store.get(rt.key, ns, name)
        if old is None:
            raise not_found(rt, name)
        try:
            patched = patchlib.apply_patch(content_type, old.copy(), raw, rt.kind)
        except patchlib.PatchError as exc:
            # A json-patch that does not apply (missing path, failed test) is a 422 on a
            # real server; an unparseable or wrongly shaped patch is a 400.
            if content_type == "application/json-patch+json":
                raise ApiError(422, "Invalid", str(exc))
            raise bad_request(str(exc))
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise bad_request("patch produced an object without metadata")
        if patched["metadata"].get("name") != name:
            raise bad_request(f"the name of the object ({patched['metadata'].get('name')}) does not match the name on the URL ({name})")
        return self.update(rt, ns, name, patched, subresource=subresource, dry_run=dry_run, old=old)

    # ------------------------------------------------------------------ delete

    def delete(self, rt: ResourceType, ns: str, name: str, options: dict | None = None,
               dry_run: bool = False) -> tuple[Entry, bool]:
        """Delete an object; returns (entry, removed_now)."""
        ns = ns if rt.namespaced else ""
        options = options or {}
        e = self.store.get(rt.key, ns, name)
        if e is None:
            raise not_found(rt, name)
        pre = options.get("preconditions") or {}
        meta = e.obj["metadata"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise conflict(rt, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise conflict(rt, name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {meta['resourceVersion']}")
        if dry_run:  # what a real delete would have done, nothing done
            return e, not (rt is NAMESPACES or meta.get("finalizers"))
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is not None:  # the deprecated spelling: false deletes dependents
            policy = "Orphan" if options["orphanDependents"] else "Foreground"
        policy = policy or DEFAULT_PROPAGATION.get(rt.key)
        if rt is not NAMESPACES and policy in ("Orphan", "Foreground") and not meta.get("deletionTimestamp"):
            return self._delete_through_finalizer(rt, e, policy)
        self._propagate(meta["uid"], policy)
        if rt is NAMESPACES or meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return e, False
            obj = e.copy()
            obj["metadata"]["deletionTimestamp"] = rfc3339()
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            if rt is NAMESPACES:
                obj.setdefault("status", {})["phase"] = "Terminating"
            return self.store.put(rt.key, obj), False
        return self._remove(rt, ns, name), True

    def _propagate(self, uid: str, policy: str | None) -> None:
        if policy == "Orphan":
            self._orphan(uid)
        elif policy == "Foreground":
            for dep in self.store.dependents_of(uid):
                try:
                    self.delete(TYPE_BY_KEY[dep.res], dep.ns, dep.name, {"propagationPolicy": "Foreground"})
                except ApiError:
                    pass

    def _delete_through_finalizer(self, rt: ResourceType, e: Entry, policy: str) -> tuple[Entry, bool]:
        """Orphan and Foreground as the real server does them: the object gets its deletionTimestamp
        and the ``orphan`` / ``foregroundDeletion`` finalizer (that object is the answer), then the
        garbage collector's part - done here at once - orphans or deletes the dependents and drops
        the finalizer, which removes the object unless other finalizers hold it."""
        fin = "orphan" if policy == "Orphan" else "foregroundDeletion"
        obj = e.copy()
        meta = obj["metadata"]
        meta["deletionTimestamp"] = rfc3339()
        meta["deletionGracePeriodSeconds"] = 0
        meta["finalizers"] = [f for f in meta.get("finalizers") or [] if f != fin] + [fin]
        answer = self.store.put(rt.key, obj)
        uid = meta["uid"]
        self._propagate(uid, policy)
        cur = self.store.get(rt.key, e.ns, e.name)
        if cur is not None and cur.obj["metadata"]["uid"] == uid:
            rest = [f for f in cur.obj["metadata"].get("finalizers") or [] if f != fin]
            if rest:
                obj = cur.copy()
                obj["metadata"]["finalizers"] = rest
                self.store.put(rt.key, obj)
            else:
                self._remove(rt, e.ns, e.name)
        return answer, False

    @staticmethod
    def delete_answer(rt: ResourceType, e: Entry, removed: bool, options: dict | None = None):
        """What DELETE answers, as the generic registry's ``finalizeDelete``: a kind whose
        storage sets ``ReturnDeletedObject`` answers the deleted object; the others a
        ``Status`` naming it (group, resource, uid).  A deletion that finalizers (or a
        namespace's Terminating phase) defer answers the object, with its
        ``deletionTimestamp``, for every kind - 202 when ``orphanDependents`` is false.
        Returns (body, HTTP status)."""
        if not removed:
            accepted = (options or {}).get("orphanDependents") is False
            return e, 202 if accepted else 200
        if rt.key in RETURNS_DELETED_OBJECT:
            return e, 200
        meta = e.obj["metadata"]
        details = {"name": meta["name"]}
        if rt.group:
            details["group"] = rt.group
        details.update(kind=rt.plural, uid=meta["uid"])
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}, 200

    def _orphan(self, uid: str) -> None:
        for dep in self.store.dependents_of(uid):
            obj = dep.copy()
            obj["metadata"]["ownerReferences"] = [r for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            if not obj["metadata"]["ownerReferences"]:
                del obj["metadata"]["ownerReferences"]
            self.store.put(dep.res, obj)

    def _remove(self, rt: ResourceType, ns: str, name: str) -> Entry:
        e = self.store.remove(rt.key, ns, name)
        if rt is SERVICES:
            self.ips.release((e.obj.get("spec") or {}).get("clusterIP"))
        for hook in self.on_removed:
            hook(rt, e)
        return e

    def delete_collection(self, rt: ResourceType, ns: str | None, label_selector=None, field_selector=None,
                          options: dict | None = None, dry_run: bool = False) -> list[Entry]:
        entries, _, _, _ = self.list(rt, ns, label_selector, field_selector)
        out = []
        for e in entries:
            try:
                out.append(self.delete(rt, e.ns, e.name, options, dry_run)[0])
            except ApiError:
                pass
        return out

    # ------------------------------------------------------------------ controller helpers

    def write(self, rt: ResourceType, obj: dict, old: Entry | None = None) -> Entry:
        """Controller write of a whole object (spec and status), skipping validation."""
        meta = obj["metadata"]
        return self.update(rt, meta.get("namespace", ""), meta["name"], obj, internal=True, old=old)

    def write_status(self, rt: ResourceType, obj: dict, old: Entry | None = None) -> Entry:
        meta = obj["metadata"]
        return self.update(rt, meta.get("namespace", ""), meta["name"], obj, subresource="status",
                           internal=True, old=old)


TYPE_BY_KEY = {t.key: t for t in TYPES if not t.storage}
# Where an API's default propagation is not Background (the strategies'
# DefaultGarbageCollectionPolicy): batch/v1 Jobs orphan their pods, for backwards compatibility.
DEFAULT_PROPAGATION = {"batch/jobs": "Orphan"}

# Status fields Go serializes without omitempty (e.g. autoscaling/v2 HorizontalPodAutoscalerStatus's
# desiredReplicas): a real server's answer always has them, and typed clients (the Python client's
# models) require them. Defaults of other kinds set theirs (workload_specs.py).
STATUS_ZERO = {"autoscaling/horizontalpodautoscalers": {"desiredReplicas": 0}}

# The kinds whose storage (pkg/registry/core/*/storage) sets ReturnDeletedObject; the OpenAPI
# document says so too (their delete answers V1Pod, V1Service, ... instead of "object").
RETURNS_DELETED_OBJECT = {"pods", "services", "serviceaccounts", "resourcequotas", "podtemplates",
                          "persistentvolumes", "persistentvolumeclaims"}
__all__ = ["Registry", "ApiError", "rfc3339", "micro_time", "parse_time", "PODS"]
