"""``events.k8s.io/v1`` Events: another view of the core/v1 Events, one storage.

As on a real API server, both APIs read and write the same objects; only the field names
differ (``note``/``message``, ``regarding``/``involvedObject``, ``reportingController``/
``reportingComponent``, ``deprecatedSource``/``source``, ``deprecatedCount``/``count``,
``deprecatedFirstTimestamp``/``firstTimestamp``, ``deprecatedLastTimestamp``/``lastTimestamp``),
field selectors use the events.k8s.io names (``regarding.name=...``), and creating through
events.k8s.io/v1 is validated strictly (``eventTime``, ``reportingController``,
``reportingInstance``, ``action``, ``reason`` required; ``type`` Normal or Warning; no
``deprecated*`` fields).
"""
from __future__ import annotations

import json

from .registry import ApiError, bad_request, invalid
from .resources import EVENTS, EVENTS_V1

API_VERSION = "events.k8s.io/v1"

# events.k8s.io/v1 field <-> core/v1 field; everything else has the same name in both.
RENAMED = {"note": "message", "regarding": "involvedObject", "reportingController": "reportingComponent",
           "deprecatedSource": "source", "deprecatedCount": "count",
           "deprecatedFirstTimestamp": "firstTimestamp", "deprecatedLastTimestamp": "lastTimestamp"}
TO_V1 = {core: v1 for v1, core in RENAMED.items()}
SHARED = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")
# Field selectors events.k8s.io/v1 accepts, as the core/v1 fields they select on.
SELECTABLE = {"reason": "reason", "reportingController": "reportingComponent", "type": "type",
              "metadata.namespace": "metadata.namespace", "metadata.name": "metadata.name",
              **{f"regarding.{f}": f"involvedObject.{f}"
                 for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}}


def to_v1(core: dict) -> dict:
    out = {"kind": "Event", "apiVersion": API_VERSION, "metadata": core.get("metadata") or {},
           "eventTime": core.get("eventTime")}
    for key, value in core.items():
        if key in ("kind", "apiVersion", "metadata", "eventTime", "message", "involvedObject"):
            continue
        if value in (None, "", 0, {}):
            continue  # every other field of events.k8s.io/v1 is omitempty
        out[TO_V1.get(key, key)] = value
    if core.get("involvedObject"):
        out["regarding"] = core["involvedObject"]
    if core.get("message"):
        out["note"] = core["message"]
    return out


def from_v1(v1: dict) -> dict:
    if not isinstance(v1, dict):
        raise bad_request("the body of the request was in an unknown format")
    av, kind = v1.get("apiVersion"), v1.get("kind")
    if av and av != API_VERSION:
        raise bad_request(f"the API version in the data ({av}) does not match the expected API version ({API_VERSION})")
    if kind and kind != "Event":
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind (Event)")
    core = {"apiVersion": "v1", "kind": "Event", "involvedObject": {}}
    for key, value in v1.items():
        if key in ("apiVersion", "kind"):
            continue
        core[RENAMED.get(key, key)] = value
    return core


def field_selector(sel: str | None) -> str | None:
    if not sel:
        return sel
    out = []
    for part in sel.split(","):
        if not part.strip():
            continue
        op = "!=" if "!=" in part else ("==" if "==" in part else "=")
        if op not in part:
            raise bad_request(f"invalid selector: '{sel}'; can't understand '{part}'")
        name, value = part.split(op, 1)
        mapped = SELECTABLE.get(name.strip())
        if mapped is None:
            raise bad_request(f"field label not supported: {name.strip()}")
        out.append(f"{mapped}{op}{value}")
    return ",".join(out)


def validate_create(v1: dict) -> None:
    """The strict checks of an Event created through events.k8s.io/v1 (422 Invalid)."""
    causes = []
    name = (v1.get("metadata") or {}).get("name") or ""

    def required(field: str) -> None:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": field})

    for field in ("eventTime", "reportingController", "reportingInstance", "action", "reason"):
        if not v1.get(field):
            required(field)
    if v1.get("type") not in ("Normal", "Warning"):
        causes.append({"reason": "FieldValueInvalid", "field": "type",
                       "message": f'Invalid value: "": has invalid value: {v1.get("type") or ""}'})
    for field in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount", "deprecatedSource"):
        if v1.get(field):
            causes.append({"reason": "FieldValueInvalid", "field": field, "message": 'Invalid value: "": needs to be unset'})
    if len((v1.get("note") or "").encode()) > 1024:
        causes.append({"reason": "FieldValueTooLong", "field": "note",
                       "message": "Too long: may not be more than 1024 bytes"})
    if causes:
        raise invalid(EVENTS_V1, name, causes)


class EventsV1:
    """Serves /apis/events.k8s.io/v1 through the core/v1 Event handlers of ``Api``."""

    def __init__(self, api):
        self.api = api
        self.registry = api.registry

    def out(self, entry_or_obj) -> dict:
        return to_v1(getattr(entry_or_obj, "obj", entry_or_obj))

    async def handle(self, request, ns: str | None, name: str | None, watch: bool):
        try:
            return await self._handle(request, ns, name, watch)
        except ApiError as exc:  # the core/v1 handlers' errors, named for this group as the real server does
            d = exc.details
            if d and d.get("kind") == "events" and "group" not in d:
                exc.details = {"name": d.get("name"), "group": "events.k8s.io", **d}
                exc.message = exc.message.replace('events "', 'events.events.k8s.io "', 1)
            raise

    async def _handle(self, request, ns: str | None, name: str | None, watch: bool):
        from .api import _resp, _wants_table, exact_rv  # api imports this module
        from .store import dumps
        api, reg, q = self.api, self.registry, request.query
        method = request.method
        dry_run = q.get("dryRun") == "All"
        fsel = field_selector(q.get("fieldSelector"))
        if name is None and method == "GET":
            if watch:
                return await api._watch(request, EVENTS, ns, field_selector=fsel, convert=self.out)
            if _wants_table(request):
                return api._list(request, EVENTS, ns, field_selector=fsel)
            try:
                limit = int(q.get("limit") or 0)
            except ValueError:
                raise bad_request(f"invalid limit {q.get('limit')!r}") from None
            entries, rv, cont, remaining = reg.list(EVENTS, ns, q.get("labelSelector"), fsel, limit, q.get("continue"),
                                                    exact_rv(q))
            return api._list_body([self.out(e) for e in entries], EVENTS_V1, str(rv), cont,
                                  None if q.get("labelSelector") or fsel else remaining)
        if name is None and method == "POST":
            body = await api._json(request)
            validate_create(body if isinstance(body, dict) else {})
            return _resp(dumps(self.out(reg.create(EVENTS, ns or "", from_v1(body), dry_run=dry_run))), 201)
        if name is None and method == "DELETE":
            opts = await api._delete_opts(request)
            deleted = reg.delete_collection(EVENTS, ns, q.get("labelSelector"), fsel, opts, dry_run)
            return api._list_body([self.out(e) for e in deleted], EVENTS_V1, str(reg.store.rv), None)
        if name is None:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        if ns is None:  # an Event is namespaced: /apis/events.k8s.io/v1/events/NAME is no path
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if watch and method == "GET":
            return await api._watch(request, EVENTS, ns, name, field_selector=fsel, convert=self.out)
        if method == "GET":
            e = reg.get(EVENTS, ns, name)
            if _wants_table(request):
                return api._table_response(request, EVENTS, e)
            return _resp(dumps(self.out(e)))
        if method == "PUT":
            body = await api._json(request)
            return _resp(dumps(self.out(reg.update(EVENTS, ns, name, from_v1(body), dry_run=dry_run))))
        if method == "PATCH":
            from . import patch as patchlib
            old = reg.get(EVENTS, ns, name)
            try:
                patched = patchlib.apply_patch(request.content_type, self.out(old), await request.read(), "Event")
            except patchlib.PatchError as exc:
                raise bad_request(str(exc)) from None
            core = from_v1(json.loads(dumps(patched)))
            return _resp(dumps(self.out(reg.update(EVENTS, ns, name, core, dry_run=dry_run, old=old))))
        if method == "DELETE":
            opts = await api._delete_opts(request)
            e, _ = reg.delete(EVENTS, ns, name, opts, dry_run)
            return _resp(dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                                "details": {"name": name, "group": "events.k8s.io", "kind": "events",
                                            "uid": e.obj["metadata"]["uid"]}}))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
