"""One kind's walk through the verbs with the official client (the table is conformance.py's KINDS).

Create two objects (labels conf=a / conf=b) and a generateName one (conf=b), then read, list,
replace, patch, the subresources, delete, deletecollection, and watch what happened — each step a
check with what the real kube-apiserver answers.
"""
from __future__ import annotations

import inspect
import json

from kubernetes import client

from conformance import BODIES, JSONPATCH, MERGE, SMP, Checks, Kind, api_error, expect, watch_events
from sandbox_helpers import read_modify_replace

ALL_VERBS = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}


def short(kind: Kind) -> str:
    return "".join(p[:4] for p in kind.name.replace(".", "-").split("-"))[:12]


def status_body(exc: client.ApiException) -> dict:
    return json.loads(exc.body)


def not_kept(sent, got, path: str = "") -> list[str]:
    """Paths of ``sent`` that ``got`` does not hold (defaults the server adds are fine)."""
    if sent is None:  # the model's unset field
        return []
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [path or "."]
        return [p for k, v in sent.items() for p in not_kept(v, got.get(k), f"{path}.{k}")]
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [path]
        return [p for i, v in enumerate(sent) for p in not_kept(v, got[i], f"{path}[{i}]")]
    return [] if sent == got else [f"{path}: {sent!r} != {got!r}"]


class KindRun:
    discovery: dict = {}  # API class -> its V1APIResourceList (one discovery call per group version)

    def __init__(self, checks: Checks, api_client, kind: Kind, ns: str):
        self.c, self.api, self.k, self.ns = checks, api_client, kind, ns
        self.model = kind.model(api_client)
        self.a, self.b = f"c-{short(kind)}-a", f"c-{short(kind)}-b"
        self.plural = kind.name.split(".")[0]
        self.writes = 0
        self.created = None

    def call(self, verb: str, *args, **kw):
        """``verb(name?, ns?, body?)`` with the namespace put where the client wants it."""
        fn = self.k.fn(verb, self.api)
        if self.k.namespaced:
            named = verb.split(":")[0] not in ("create", "list", "delete_collection")
            args = (args[0], self.ns, *args[1:]) if named else (self.ns, *args)
        return fn(*args, **kw)

    def label(self, name: str) -> str:
        return f"{self.k.name}: {name}"

    def typed(self, obj, name: str) -> None:
        expect(isinstance(obj, self.model), f"a {self.model.__name__}", type(obj).__name__)
        expect(obj.metadata and obj.metadata.name == name, f"metadata.name {name}", obj.metadata)

    def body(self, name: str | None, labels: dict, generate: str | None = None):
        meta = {"name": name, "labels": labels} if name else {"generateName": generate, "labels": labels}
        return self.model.from_dict({"metadata": meta, **BODIES[self.k.name](name or "c-gen", self.ns)})

    def run(self) -> None:
        # Raw: a typed list of events.k8s.io Events fails in this client whenever one has no eventTime
        # (every core/v1 Event a legacy recorder writes: the kubelet's, the controllers') - on a real server too.
        start_rv = json.loads(self.call("list", limit=1, _preload_content=False).data)["metadata"]["resourceVersion"]
        self.discover()
        self.create()
        self.read_and_list()
        self.replace()
        self.patches()
        if self.k.status:
            with self.c(self.label("read status")):
                self.typed(self.call("read:status", self.a), self.a)
        if self.k.scale:
            self.scale()
        self.delete()
        self.watch(start_rv)

    def discover(self) -> None:
        with self.c(self.label("discovery lists it with its verbs and subresources")):
            if self.k.api not in KindRun.discovery:
                KindRun.discovery[self.k.api] = getattr(client, self.k.api)(self.api).get_api_resources()
            found = {r.name: r for r in KindRun.discovery[self.k.api].resources}
            r = found.get(self.plural)
            # Namespaces have no deletecollection (pkg/registry/core/namespace/storage).
            verbs = ALL_VERBS - ({"deletecollection"} if not self.k.collection else set())
            expect(r and r.namespaced == self.k.namespaced and set(r.verbs) == verbs,
                   f"{self.plural} namespaced={self.k.namespaced} verbs {sorted(verbs)}", r)
            subs = {n.split("/")[1] for n in found if n.startswith(self.plural + "/")} & {"status", "scale"}
            want = {s for s, on in (("status", self.k.status), ("scale", self.k.scale)) if on}
            expect(subs == want, f"subresources {sorted(want)}", sorted(subs))

    def create(self) -> None:
        c = self.c
        with c(self.label("create: 201 and the typed object")):
            fn = self.k.fn("create", self.api)
            info = getattr(fn.__self__, fn.__name__ + "_with_http_info")
            body = self.body(self.a, {"conf": "a"})
            created, code, _ = info(self.ns, body) if self.k.namespaced else info(body)
            expect(code == 201, "HTTP 201", code)
            self.typed(created, self.a)
            expect(created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp,
                   "uid, resourceVersion and creationTimestamp", created.metadata)
            self.typed(self.call("create", self.body(self.b, {"conf": "b"})), self.b)
            self.created = created
        with c(self.label("create keeps every field sent")):
            sent = {k: v for k, v in body.to_dict().items() if k not in ("metadata", "string_data", "status")}
            missing = not_kept(sent, self.created.to_dict())
            expect(not missing, "every sent field back", missing)
        with c(self.label("create with generateName")):
            got = self.call("create", self.body(None, {"conf": "b"}, generate="c-gen-"))
            expect(got.metadata.name.startswith("c-gen-") and len(got.metadata.name) == len("c-gen-") + 5,
                   "c-gen- and 5 random characters", got.metadata.name)
        with c(self.label("create of an existing name is 409 AlreadyExists")):
            exc = api_error(self.call, "create", self.body(self.a, {}))
            expect(exc.status == 409 and status_body(exc)["reason"] == "AlreadyExists", "409 AlreadyExists", exc.body)
        with c(self.label("create with an invalid name is 422 Invalid naming metadata.name")):
            exc = api_error(self.call, "create", self.body("bad/name", {}))
            causes = (status_body(exc).get("details") or {}).get("causes") or []
            expect(exc.status == 422 and status_body(exc)["reason"] == "Invalid"
                   and any(x.get("field") == "metadata.name" for x in causes), "422 Invalid, cause metadata.name",
                   exc.body)
        with c(self.label("dry-run create answers the object and stores nothing")):
            got = self.call("create", self.body(f"{self.a}-dry", {}), dry_run="All")
            self.typed(got, f"{self.a}-dry")
            expect(api_error(self.call, "read", f"{self.a}-dry").status == 404, "404 reading it back", None)

    def read_and_list(self) -> None:
        c = self.c
        with c(self.label("read")):
            got = self.call("read", self.a)
            self.typed(got, self.a)
            expect(got.metadata.uid == self.created.metadata.uid, "the created uid", got.metadata.uid)
        with c(self.label("list with a label selector")):
            listed = self.call("list", label_selector="conf=a")
            names = [i.metadata.name for i in listed.items]
            expect(names == [self.a] and all(isinstance(i, self.model) for i in listed.items),
                   f"[{self.a}] as {self.model.__name__}s", names)
            expect(listed.metadata.resource_version, "list metadata.resourceVersion", listed.metadata)
        if self.k.namespaced:
            with c(self.label("list for all namespaces")):
                fn = getattr(getattr(client, self.k.api)(self.api), f"list_{self.k.suffix}_for_all_namespaces")
                got = [(i.metadata.namespace, i.metadata.name) for i in fn(label_selector="conf=a").items]
                expect(got == [(self.ns, self.a)], [(self.ns, self.a)], got)
    def replace(self) -> None:
        with self.c(self.label("replace with the read resourceVersion")):
            def relabel(obj):
                obj.metadata.labels = {**(obj.metadata.labels or {}), "replaced": "yes"}
            obj, out = read_modify_replace(lambda: self.call("read", self.a),
                                           lambda o: self.call("replace", self.a, o), relabel)
            self.typed(out, self.a)
            expect(out.metadata.labels.get("replaced") == "yes", "label replaced=yes", out.metadata.labels)
            expect(out.metadata.resource_version != obj.metadata.resource_version, "a new resourceVersion",
                   out.metadata.resource_version)
            self.writes += 1
        with self.c(self.label("replace with a stale resourceVersion is 409 Conflict")):
            exc = api_error(self.call, "replace", self.a, self.created)
            expect(exc.status == 409 and json.loads(exc.body)["reason"] == "Conflict", "409 Conflict", exc.body)

    def patches(self) -> None:
        for kind, ctype, body in (("merge", MERGE, {"metadata": {"labels": {"merge": "yes"}}}),
                                  ("strategic merge", SMP, {"metadata": {"labels": {"strategic": "yes"}}}),
                                  ("json", JSONPATCH, [{"op": "add", "path": "/metadata/labels/json", "value": "yes"}])):
            with self.c(self.label(f"{kind} patch")):
                out = self.call("patch", self.a, body, _content_type=ctype)
                self.typed(out, self.a)
                key = {"merge": "merge", "strategic merge": "strategic", "json": "json"}[kind]
                expect((out.metadata.labels or {}).get(key) == "yes", f"label {key}=yes", out.metadata.labels)
                self.writes += 1
        with self.c(self.label("patch of a missing object is 404 NotFound")):
            exc = api_error(self.call, "patch", f"{self.a}-none", {"metadata": {"labels": {"x": "y"}}},
                            _content_type=MERGE)
            expect(exc.status == 404 and status_body(exc)["reason"] == "NotFound", "404 NotFound", exc.body)

    def scale(self) -> None:
        with self.c(self.label("read and patch scale")):
            sc = self.call("read:scale", self.a)
            expect(isinstance(sc, client.V1Scale) and sc.spec.replicas == 1, "a V1Scale of 1 replica", sc)
            expect(sc.status.selector == f"app={self.a}", f"status.selector app={self.a}", sc.status.selector)
            # No content type: for a dict body the client sends a strategic merge patch (rest.py).
            sc = self.call("patch:scale", self.a, {"spec": {"replicas": 2}})
            expect(isinstance(sc, client.V1Scale) and sc.spec.replicas == 2, "a V1Scale of 2 replicas", sc)
            expect(self.call("read", self.a).spec.replicas == 2, "spec.replicas 2 on the object", None)
        with self.c(self.label("replace scale with a V1Scale")):
            _, sc = read_modify_replace(lambda: self.call("read:scale", self.a),
                                        lambda o: self.call("replace:scale", self.a, o),
                                        lambda o: setattr(o.spec, "replicas", 0))
            expect(isinstance(sc, client.V1Scale) and sc.spec.replicas == 0, "a V1Scale of 0 replicas", sc)

    def delete(self) -> None:
        declared = inspect.signature(self.k.fn("delete", self.api)).return_annotation
        # Pods are deleted at once (gracePeriodSeconds=0), as a graceful deletion would wait for the kubelet.
        grace = {"grace_period_seconds": 0} if self.k.name == "pods" else {}
        with self.c(self.label("delete with a wrong uid precondition is 409 Conflict")):
            opts = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000"))
            exc = api_error(self.call, "delete", self.a, body=opts)
            expect(exc.status == 409 and status_body(exc)["reason"] == "Conflict", "409 Conflict", exc.body)
        with self.c(self.label("dry-run delete answers and keeps the object")):
            out = self.call("delete", self.a, dry_run="All", **grace)
            # A Status names it in details, an object in metadata (typed for the ReturnDeletedObject kinds).
            name = (out.get("details") or out.get("metadata") or {}).get("name") if isinstance(out, dict) \
                else out.metadata.name
            expect(name == self.a, f"an answer naming {self.a}", out)
            expect(self.call("read", self.a).metadata.uid == self.created.metadata.uid, "the object still there", None)
        with self.c(self.label("delete: the client parses the answer")):
            out = self.call("delete", self.a, **grace)
            if declared is object:  # OpenAPI: Status or the object; the client hands back the JSON
                if self.k.name == "namespaces":  # the `kubernetes` finalizer defers it: the Namespace, Terminating
                    expect(out["kind"] == "Namespace" and out["status"]["phase"] == "Terminating"
                           and out["metadata"].get("deletionTimestamp"), "the Namespace, Terminating", out)
                elif self.k.name == "jobs":  # batch/v1's default propagation is Orphan: deferred by that finalizer
                    expect(out["kind"] == "Job" and out["metadata"].get("finalizers") == ["orphan"]
                           and out["metadata"].get("deletionTimestamp"), "the Job, with finalizer orphan", out)
                else:  # generic registry finalizeDelete: a Status naming it
                    details = out.get("details") or {}
                    expect(out["kind"] == "Status" and out["status"] == "Success" and details.get("name") == self.a
                           and details.get("uid") == self.created.metadata.uid, "a Success Status naming it", out)
            else:  # ReturnDeletedObject (pods, services, serviceaccounts, resourcequotas): the object
                self.typed(out, self.a)
            if self.k.name != "namespaces":
                exc = api_error(self.call, "read", self.a)
                details = status_body(exc).get("details") or {}
                want = {"name": self.a, "kind": self.plural, **({"group": self.k.group} if self.k.group else {})}
                expect(exc.status == 404 and status_body(exc)["reason"] == "NotFound" and details == want,
                       f"404 NotFound, details {want}", exc.body)
        if not self.k.collection:  # the other objects go one by one
            for name in [i.metadata.name for i in self.call("list", label_selector="conf=b").items]:
                self.call("delete", name, **grace)
            return
        with self.c(self.label("delete_collection with a label selector")):
            out = self.call("delete_collection", label_selector="conf=b", **grace)
            # The real server answers the list of what it deleted (registry.Store.DeleteCollection), which
            # the client reads as its declared V1Status: kind tells.
            want = f"{self.created.kind}List"
            expect(isinstance(out, client.V1Status) and out.kind == want, f"a {want}", out)
            left = [i.metadata.name for i in self.call("list", label_selector="conf=b").items]
            expect(left == [], "nothing left labelled conf=b", left)

    def watch(self, start_rv: str) -> None:
        events = []
        with self.c(self.label("watch from a resourceVersion: ADDED, MODIFIED..., DELETED")):
            events = watch_events(self.k.fn("list", self.api), self.k.namespaced and self.ns, self.a, start_rv)
            types = [e["type"] for e in events]
            expect(types and types[0] == "ADDED" and types[-1] == "DELETED"
                   and set(types[1:-1]) <= {"MODIFIED"} and types.count("MODIFIED") >= self.writes,
                   f"ADDED, >= {self.writes} MODIFIED, DELETED", types)
            expect(all(isinstance(e["object"], self.model) for e in events), f"{self.model.__name__} objects",
                   {type(e["object"]).__name__ for e in events})
            rvs = [int(e["object"].metadata.resource_version) for e in events[:-1]]
            expect(rvs == sorted(set(rvs)), "increasing resourceVersions", rvs)
        with self.c(self.label("watch resumes from an event's resourceVersion")):
            expect(len(events) > 1, "events from the first watch", len(events))
            rv = events[0]["object"].metadata.resource_version
            again = watch_events(self.k.fn("list", self.api), self.k.namespaced and self.ns, self.a, rv)
            expect([(e["type"], e["raw_object"]["metadata"]["resourceVersion"]) for e in again]
                   == [(e["type"], e["raw_object"]["metadata"]["resourceVersion"]) for e in events[1:]],
                   "the same events after the first", [e["type"] for e in again])


