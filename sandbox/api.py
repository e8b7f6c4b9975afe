"""HTTP layer: routing, authentication, content negotiation, watch streaming.

One catch-all aiohttp route dispatches on the path by hand: the Kubernetes URL space
(``/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}``, cluster-scoped variants,
``/apis/{group}/{version}/...``) is awkward for a pattern router and a hand parser is
faster.  Everything that is not HTTP-specific lives in ``registry.py``.

Watches are aiohttp ``StreamResponse``s writing newline-delimited JSON events; the
loop drains the watcher's buffer in one write per wake-up, so a burst of events
costs one syscall.  A watch from a compacted resourceVersion answers 200 with a single
``ERROR`` event carrying a 410 ``Status`` (what the watch cache does), which the
official client turns into ``ApiException(410)`` and informers into a re-list.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import time

from aiohttp import web

from . import apply, discovery, managedfields, podlogs, protobuf, streams, tables
from .controllers import PACER
from .eventsv1 import EventsV1
from .registry import ApiError, Registry, bad_request
from .resources import BY_GVR, DEPLOYMENTS, NAMESPACES, PODS, REPLICASETS, ResourceType
from .selectors import selector_object_to_string
from .store import Entry, TooOld, Watcher, dumps

log = logging.getLogger("sandbox.api")

JSON = "application/json"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json")
UNAUTH = dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
PUBLIC = {"/healthz", "/livez", "/readyz", "/version", "/version/"}  # the Python client asks /version/


def _resp(body: bytes, status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(body=body, status=status, content_type=content_type)


def _obj_resp(obj, status: int = 200) -> web.Response:
    return _resp(obj.raw if isinstance(obj, Entry) else dumps(obj), status)


def _error(exc: ApiError) -> web.Response:
    return _resp(dumps(exc.status()), exc.code)


def _not_found_path(path: str) -> web.Response:
    return _error(ApiError(404, "NotFound", "the server could not find the requested resource",
                           {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


UNSET = object()


def exact_rv(q) -> str | None:
    """The resourceVersion a list must be read at (``resourceVersionMatch=Exact``), else None."""
    return q.get("resourceVersion") if q.get("resourceVersionMatch") == "Exact" else None


def _map_watch(w: Watcher, fn, types: tuple) -> None:
    """Make ``w`` send ``fn(object)`` instead of the stored object for events of ``types``
    (one-row Tables for ``kubectl get -w``, the events.k8s.io view of an Event)."""
    plain_push = w.push

    def push(line: bytes) -> None:
        try:
            ev = json.loads(line)
            if ev["type"] in types:
                ev["object"] = fn(ev["object"])
            plain_push(dumps(ev) + b"\n")
        except (ValueError, KeyError):
            plain_push(line)

    buffered = list(w.buf)  # replay what is already buffered through the converter
    w.buf.clear()
    w.push = push  # type: ignore[method-assign]
    for line in buffered:
        push(line)


class Api:
    def __init__(self, registry: Registry, token: str, server_address: str, kubelet=None,
                 log_interval: float = 1.0):
        self.registry = registry
        self.log_interval = log_interval
        self.store = registry.store
        self.token = token.encode()
        self.server_address = server_address
        self.kubelet = kubelet
        self.watch_tasks: set = set()
        self.stopping = asyncio.Event()
        self.requests = 0
        self.events_v1 = EventsV1(self)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # ------------------------------------------------------------------ entry

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        return hmac.compare_digest(auth[7:].strip().encode(), self.token)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        PACER.api_hit()
        path = request.path
        if path in PUBLIC:
            if path.startswith("/version"):
                return _resp(dumps(discovery.K8S_VERSION))
            return _resp(b"ok", content_type="text/plain")
        if not self._authorized(request):
            return _resp(UNAUTH, 401)
        try:
            if path.startswith("/api/") or path == "/api":
                parts = [p for p in path.split("/") if p]
                if len(parts) == 1:
                    return _resp(dumps(discovery.api_versions(self.server_address)))
                return await self._resource(request, "", parts[1], parts[2:])
            if path.startswith("/apis/") or path == "/apis":
                parts = [p for p in path.split("/") if p]
                if len(parts) == 1:
                    return _resp(dumps(discovery.api_group_list()))
                if len(parts) == 2:
                    g = discovery.api_group(parts[1])
                    return _resp(dumps(g)) if g else _not_found_path(path)
                return await self._resource(request, parts[1], parts[2], parts[3:])
            if path.startswith("/openapi/v3"):
                rest = path[len("/openapi/v3"):].strip("/")
                if not rest:
                    return _resp(dumps(discovery.openapi_v3_root()))
                parts = rest.split("/")
                group, version = ("", parts[1]) if parts[0] == "api" and len(parts) == 2 else (
                    (parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 else (None, None))
                doc = discovery.openapi_v3_gv(group, version) if version else None
                return _resp(dumps(doc)) if doc else _not_found_path(path)
            return _not_found_path(path)
        except ApiError as exc:
            return _error(exc)

    # ------------------------------------------------------------------ routing

    async def _resource(self, request: web.Request, group: str, version: str, rest: list[str]):
        if not rest:
            rl = discovery.resource_list(group, version)
            return _resp(dumps(rl)) if rl else _not_found_path(request.path)
        q = request.query
        watch = q.get("watch") in ("1", "true", "True")
        if rest[0] == "watch":
            watch, rest = True, rest[1:]
        ns = None
        if rest and rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
        if not rest:
            return _not_found_path(request.path)
        rt = BY_GVR.get((group, version, rest[0]))
        if rt is None or len(rest) > 3:
            return _not_found_path(request.path)
        if rt.namespaced is False and ns is not None:
            return _not_found_path(request.path)
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            return _not_found_path(request.path)
        method = request.method
        dry_run = q.get("dryRun") == "All"
        if rt.storage:
            return await self.events_v1.handle(request, ns if rt.namespaced else None, name, watch)
        if name is None:
            if method == "GET":
                if watch:
                    return await self._watch(request, rt, ns)
                return self._list(request, rt, ns)
            if method == "POST":
                if rt.namespaced and ns is None:
                    return _error(ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
                body = await self._json(request)
                e = self.registry.create(rt, ns or "", body, dry_run=dry_run)
                return _obj_resp(e, 201)
            if method == "DELETE" and "deletecollection" in rt.verbs:
                opts = await self._delete_opts(request)
                deleted = self.registry.delete_collection(rt, ns, q.get("labelSelector"), q.get("fieldSelector"),
                                                          opts, dry_run)
                return self._list_body([e.obj for e in deleted], rt, str(self.store.rv), None)
            return _error(ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))
        if rt.namespaced and ns is None:
            return _not_found_path(request.path)
        ns = ns or ""
        if watch and method == "GET":
            # Legacy single-object watch (/watch/.../name): a field selector on the name.
            return await self._watch(request, rt, ns, name)
        if sub == "scale":
            return await self._scale(request, rt, ns, name, dry_run)
        if sub == "log":
            return await self._log(request, ns, name)
        if sub in ("exec", "attach", "portforward"):
            return await streams.handle(self, request, ns, name, sub)
        if sub == "finalize":
            sub = None  # namespace finalize: a plain update of spec.finalizers
        if method == "GET":
            e = self.registry.get(rt, ns, name)
            if sub is None and _wants_table(request):
                return self._table_response(request, rt, e)
            return _obj_resp(e)
        if method == "PUT":
            body = await self._json(request)
            e = self.registry.update(rt, ns, name, body, subresource=sub, dry_run=dry_run)
            return _obj_resp(e)
        if method == "PATCH":
            ctype = request.content_type
            managedfields.REQUEST_MANAGER.set(managedfields.manager_for(q, request.headers.get("User-Agent", "")))
            if ctype == apply.MEDIA_TYPE:  # server-side apply (sandbox/apply.py)
                e, created = apply.server_side_apply(self.registry, rt, ns, name, await request.read(), q,
                                                     subresource=sub, dry_run=dry_run)
                return _obj_resp(e, 201 if created else 200)
            if ctype not in PATCH_TYPES:
                return _error(ApiError(415, "UnsupportedMediaType",
                                       f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_TYPES + (apply.MEDIA_TYPE,))}"))
            apply.check_options(q, False)
            e = self.registry.patch(rt, ns, name, ctype, await request.read(), subresource=sub, dry_run=dry_run)
            return _obj_resp(e)
        if method == "DELETE":
            opts = await self._delete_opts(request)
            e, removed = self.registry.delete(rt, ns, name, opts, dry_run)
            return _obj_resp(*self.registry.delete_answer(rt, e, removed, opts))
        return _error(ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource"))

    async def _json(self, request: web.Request):
        if managedfields.REQUEST_MANAGER.get() is None:  # the field manager this write is recorded for
            managedfields.REQUEST_MANAGER.set(managedfields.manager_for(request.query, request.headers.get("User-Agent", "")))
        if request.content_type == protobuf.MEDIA_TYPE:  # kubectl's typed commands (create deployment, ...)
            try:
                return protobuf.decode_body(await request.read())
            except protobuf.ProtobufError as exc:
                raise bad_request(f"the body of the request could not be decoded as protobuf: {exc}")
        if "cbor" in request.content_type or "protobuf" in request.content_type:
            raise ApiError(415, "UnsupportedMediaType",
                           f"the body of the request was in an unknown format - accepted media types include: "
                           f"application/json, application/yaml, {protobuf.MEDIA_TYPE}")
        raw = await request.read()
        try:
            return json.loads(raw)
        except ValueError:
            if request.content_type.endswith("yaml"):
                import yaml
                try:
                    return yaml.safe_load(raw)
                except yaml.YAMLError:
                    pass
            raise bad_request("the body of the request was in an unknown format")

    async def _delete_opts(self, request: web.Request) -> dict:
        opts: dict = {}
        raw = await request.read()
        if raw.strip():
            try:
                opts = json.loads(raw) or {}
            except ValueError:
                raise bad_request("the body of the request was in an unknown format")
        q = request.query
        if q.get("propagationPolicy"):
            opts["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents") in ("true", "false"):
            opts["orphanDependents"] = q["orphanDependents"] == "true"
        return opts

    # ------------------------------------------------------------------ list / watch

    def _list_body(self, objs_or_entries, rt: ResourceType, rv: str, cont: str | None, remaining=None):
        meta = {"resourceVersion": rv}
        if cont:
            meta["continue"] = cont
        if remaining is not None:
            meta["remainingItemCount"] = remaining
        head = dumps({"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta})
        items = b",".join(e.raw if isinstance(e, Entry) else dumps(e) for e in objs_or_entries)
        return _resp(head[:-1] + b',"items":[' + items + b"]}")

    def _table_response(self, request: web.Request, rt: ResourceType, e: Entry) -> web.Response:
        return _resp(dumps(tables.table(rt.key, [e.obj], e.obj["metadata"]["resourceVersion"],
                                        request.query.get("includeObject", "Metadata"))))

    def _list(self, request: web.Request, rt: ResourceType, ns: str | None, field_selector=UNSET):
        q = request.query
        fsel = q.get("fieldSelector") if field_selector is UNSET else field_selector
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise bad_request(f"invalid limit {q.get('limit')!r}")
        entries, rv, cont, remaining = self.registry.list(rt, ns, q.get("labelSelector"), fsel,
                                                          limit, q.get("continue"), exact_rv(q))
        if _wants_table(request):
            tbl = tables.table(rt.key, [e.obj for e in entries], str(rv), q.get("includeObject", "Metadata"), cont)
            return _resp(dumps(tbl))
        if q.get("labelSelector") or fsel:
            remaining = None  # as the real API server: only an unfiltered list counts what is left
        return self._list_body(entries, rt, str(rv), cont, remaining)

    async def _watch(self, request: web.Request, rt: ResourceType, ns: str | None, name: str | None = None,
                     field_selector=UNSET, convert=None):
        """A watch; ``convert`` maps each event's object (another API's view of the same kind)."""
        q = request.query
        fsel = q.get("fieldSelector") if field_selector is UNSET else field_selector
        if name is not None:
            fsel = f"metadata.name={name}" + (f",{fsel}" if fsel else "")
        lreqs, freqs = self.registry.selectors(rt, q.get("labelSelector"), fsel)
        rv = q.get("resourceVersion")
        send_initial = q.get("sendInitialEvents") == "true"
        try:
            since = None if rv in (None, "", "0") or send_initial else int(rv)
        except ValueError:
            raise bad_request(f"invalid resource version: {rv!r}")
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
        except ValueError:
            raise bad_request("invalid timeoutSeconds")
        if timeout <= 0:
            timeout = random.uniform(1800, 3600)  # --min-request-timeout behaviour
        as_table = _wants_table(request)
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON, "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        try:
            w = self.store.watch(rt.key, ns, lreqs, freqs, since)
            if as_table:
                _map_watch(w, lambda obj: tables.table(rt.key, [obj], obj["metadata"].get("resourceVersion", "")),
                           ("ADDED", "MODIFIED", "DELETED"))
            elif convert is not None:
                _map_watch(w, convert, ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"))
        except TooOld as exc:
            await resp.prepare(request)
            status = ApiError(410, "Expired", str(exc)).status()
            await resp.write(b'{"type":"ERROR","object":' + dumps(status) + b"}\n")
            await resp.write_eof()
            return resp
        bookmarks = q.get("allowWatchBookmarks") == "true"
        if send_initial:
            w.push(self._bookmark(rt, initial_end=True))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        next_bookmark = loop.time() + 60.0
        task = asyncio.current_task()
        self.watch_tasks.add(task)
        try:
            await resp.prepare(request)
            while True:
                if w.buf:
                    data = b"".join(w.buf)
                    w.buf.clear()
                    await resp.write(data)
                    continue
                if w.closed or self.stopping.is_set():
                    break
                w.wakeup.clear()
                now = loop.time()
                if now >= deadline:
                    break
                wait = deadline - now
                if bookmarks:
                    wait = min(wait, max(0.0, next_bookmark - now))
                try:
                    await asyncio.wait_for(w.wakeup.wait(), wait)
                except asyncio.TimeoutError:
                    if bookmarks and loop.time() >= next_bookmark:
                        w.push(self._bookmark(rt))
                        next_bookmark = loop.time() + 60.0
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(w)
            self.watch_tasks.discard(task)
        return resp

    def _bookmark(self, rt: ResourceType, initial_end: bool = False) -> bytes:
        meta: dict = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return dumps({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                                     "metadata": meta}}) + b"\n"

    # ------------------------------------------------------------------ subresources

    def _scale_obj(self, e: Entry) -> dict:
        o = e.obj
        m = o["metadata"]
        sel = (o.get("spec") or {}).get("selector")
        if o.get("kind") == "ReplicationController":  # a plain label map there (labels.SelectorFromSet)
            sel = {"matchLabels": sel or {}}
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": m["name"], "namespace": m.get("namespace"), "uid": m["uid"],
                             "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
                "spec": {"replicas": (o.get("spec") or {}).get("replicas", 0)},
                "status": {"replicas": (o.get("status") or {}).get("replicas", 0),
                           "selector": selector_object_to_string(sel)}}

    async def _scale(self, request: web.Request, rt: ResourceType, ns: str, name: str, dry_run: bool):
        from . import patch as patchlib
        e = self.registry.get(rt, ns, name)
        if request.method == "GET":
            return _resp(dumps(self._scale_obj(e)))
        managedfields.REQUEST_MANAGER.set(managedfields.manager_for(request.query, request.headers.get("User-Agent", ""), "scale"))
        if request.method == "PUT":
            body = await self._json(request)
        elif request.method == "PATCH":
            try:
                body = patchlib.apply_patch(request.content_type, self._scale_obj(e), await request.read(), "Scale")
            except patchlib.PatchError as exc:
                raise bad_request(str(exc))
        else:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        replicas = (body.get("spec") or {}).get("replicas")
        replicas = 0 if replicas is None else replicas  # Go's omitempty: `scale --replicas=0` sends no field
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: {json.dumps(replicas)}: must be greater than or equal to 0')
        rv = (body.get("metadata") or {}).get("resourceVersion")
        obj = e.copy()
        obj["spec"]["replicas"] = replicas
        if rv:
            obj["metadata"]["resourceVersion"] = rv
        e2 = self.registry.update(rt, ns, name, obj, dry_run=dry_run)
        return _resp(dumps(self._scale_obj(e2)))

    async def _log(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        """``pods/log``: options checked like the API server, the run chosen and the lines
        written like the kubelet (``podlogs.py``); ``follow`` streams until the container
        stops (the pod is deleted), the client leaves or ``limitBytes`` is reached."""
        if request.method != "GET":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        pod = self.registry.get(PODS, ns, name).obj
        try:
            opts = podlogs.parse_options(request.query, name)
            container = podlogs.pick_container(pod, opts.container)
        except podlogs.LogOptionsError as exc:
            details = {"name": name, "kind": "PodLogOptions", "causes": exc.causes} if exc.causes else None
            raise ApiError(exc.code, exc.reason, exc.message, details) from None
        node = pod["spec"].get("nodeName")
        if not node:
            return web.Response(status=204)  # not scheduled: no kubelet to ask (the API server's answer)
        if self.kubelet is not None and node != self.kubelet.node:  # no such node: worded as the real one does
            raise ApiError(404, "NotFound", f'pods "{node}" not found', {"name": node, "kind": "pods"})
        try:
            run = podlogs.select_run(pod, container, opts.previous)
        except podlogs.LogUnavailable as exc:
            raise bad_request(str(exc)) from None
        if self.kubelet is not None:
            run.start_ns = self.kubelet.start_ns(pod["metadata"]["uid"], run.container_id) or run.start_ns
        reader = podlogs.LogReader(run, opts, self.log_interval)
        if not opts.follow or run.end_ns is not None:
            return _resp(reader.read(), content_type="text/plain")
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain",
                                                       "Cache-Control": "no-cache, private"})
        resp.enable_chunked_encoding()
        uid = pod["metadata"]["uid"]
        task = asyncio.current_task()
        self.watch_tasks.add(task)
        try:
            await resp.prepare(request)
            await resp.write(reader.read())
            while not self.stopping.is_set():
                due = reader.next_due()
                if due is None:
                    break
                await asyncio.sleep(min(max(due - time.time(), 0.002), 0.25))
                if request.transport is None or request.transport.is_closing():
                    break
                e = self.store.get(PODS.key, ns, name)
                live = e is not None and e.obj["metadata"]["uid"] == uid and podlogs.still_running(e.obj, run)
                chunk = reader.advance(ended_ns=None if live else time.time_ns())
                if chunk:
                    await resp.write(chunk)
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.watch_tasks.discard(task)
        return resp


__all__ = ["Api", "DEPLOYMENTS", "REPLICASETS", "NAMESPACES", "time"]
