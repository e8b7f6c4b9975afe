"""The cluster service's read side of what runs: pods, a version's resource tree, events and
pod logs of an app.

A mixin of ``ClusterService`` (nameko finds inherited entrypoints). The gateway has
authorised the caller for the app (and, for logs, for the cluster's env) and names the
clusters a version runs on; these read the cluster with the service's own credentials.
Logs come in two steps (``domain/logs.py``): ``log_ticket`` over RPC, then the gateway
reads ``GET /internal/logs`` on this service's port with that ticket, and relays it.
"""
from __future__ import annotations

import logging

from eventlet.greenpool import GreenPool

from services.cluster.domain import logs, registry, resources, runtime
from services.cluster.mke import logstream
from services.cluster.mke import runtime as reads
from services.cluster.mke.client import ClusterError
from shared.errors import NotFound, Unauthorized
from shared.keys import Keys
from shared.names import object_name
from shared.service import rpc
from shared.web import route, streamed

log = logging.getLogger(__name__)

TICKET_HEADER = "X-MAE-Log-Ticket"


class RuntimeEntrypoints:
    def _reader(self, cluster):
        """A client that fails fast: a person is waiting, and a retry loop helps nobody here."""
        return self.clients.of(cluster, attempts=1)

    @rpc
    def version_pods(self, namespace, service, version, clusters, strict=False):
        """``{"items": [pod rows], "unreachable": [clusters]}`` of the version's pods on ``clusters``
        (those on which the app has a namespace); ``strict``: an unreachable cluster is a 503."""
        selector = runtime.selector(namespace, service, version)
        items, unreachable = [], []
        for cluster in runtime.app_clusters(self.db, namespace):
            if cluster.name not in (clusters or []):
                continue
            try:
                pods = reads.pods(self._reader(cluster), namespace, selector)
            except ClusterError as exc:
                if strict:
                    raise runtime.unavailable(cluster.name, exc)
                unreachable.append(cluster.name)
                continue
            items += sorted((runtime.pod_row(cluster.name, p) for p in pods), key=lambda r: r["name"] or "")
        return {"items": items, "unreachable": unreachable, "next_cursor": None}

    @rpc
    def version_resources(self, namespace, service, version, clusters):
        """Per cluster of ``clusters`` (``[{"name", "env"}]``), the version's Deployment →
        ReplicaSets → pods (``domain/resources.py``). A cluster that cannot be read, or on
        which the app has no namespace, is an item with ``reachable: false`` and the reason;
        clusters are read side by side, each with a short timeout, so one down costs seconds."""
        kept = {c.name: c for c in runtime.app_clusters(self.db, namespace)}
        name, selector = object_name(service, version), runtime.selector(namespace, service, version)
        timeout = float(self.config.get("CLUSTER_VIEW_TIMEOUT", 5))
        wanted = [(w, kept.get(w.get("name"))) for w in clusters or [] if isinstance(w, dict)]
        readers = {found.name: self.clients.of(found, attempts=1, read_timeout=timeout)
                   for _, found in wanted if found is not None}

        def one(pair):
            where, found = pair
            if found is None:
                return resources.unreachable(where, "The application has no namespace on this cluster.")
            client = readers[found.name]
            try:
                return resources.item(where, reads.deployment(client, namespace, name),
                                      reads.replicasets(client, namespace, selector),
                                      reads.pods(client, namespace, selector))
            except ClusterError as exc:
                return resources.unreachable(where, f"{exc.reason}: {exc.message}")
        return {"items": list(GreenPool(8).imap(one, wanted))}

    @rpc
    def app_events(self, namespace, cluster=None, service=None, version=None):
        """The app's events on its clusters (or ``cluster``), of one service or version if
        asked, newest first, at most ``runtime.MAX_EVENTS``; a named cluster down is a 503."""
        rows, unreachable = [], []
        for found in runtime.app_clusters(self.db, namespace, cluster):
            client = self._reader(found)
            try:
                events = reads.events(client, namespace)
                if service or version:
                    selector = runtime.selector(namespace, service, version)
                    wanted = runtime.objects_of(reads.pods(client, namespace, selector),
                                                reads.replicasets(client, namespace, selector))
                    events = [e for e in events if ((e.get("involvedObject") or {}).get("kind"),
                                                    (e.get("involvedObject") or {}).get("name")) in wanted]
            except ClusterError as exc:
                if cluster:
                    raise runtime.unavailable(found.name, exc)
                unreachable.append(found.name)
                continue
            rows += [runtime.event_row(found.name, e) for e in events]
        return {"items": runtime.newest_first(rows), "unreachable": unreachable, "next_cursor": None}

    @rpc
    def log_ticket(self, namespace, service, version, cluster, pod=None, tail=None, since_seconds=None,
                   follow=None):
        """A single-use ticket to read the logs of the version's pods on ``cluster`` (or of
        its pod ``pod``: a pod of anything else is 404) through ``GET /internal/logs``."""
        wanted = logs.params(tail, since_seconds, follow)
        found = runtime.app_clusters(self.db, namespace, cluster)[0]
        try:
            pods = reads.pods(self._reader(found), namespace, runtime.selector(namespace, service, version))
        except ClusterError as exc:
            raise runtime.unavailable(found.name, exc)
        rows = sorted((runtime.pod_row(found.name, p) for p in pods), key=lambda r: r["name"] or "")
        if pod is not None:
            rows = [r for r in rows if r["name"] == pod]
            if not rows:
                raise NotFound(f"Version {version!r} has no pod {pod!r} on cluster {cluster!r}.",
                               {"pod": pod, "cluster": cluster})
        if not rows:
            raise NotFound(f"Version {version!r} has no pods on cluster {cluster!r}.", {"cluster": cluster})
        chosen = [{"name": r["name"], "container": r["container"]} for r in rows[:logs.MAX_PODS]]
        grant = {"cluster": found.name, "namespace": namespace, "pods": chosen, **wanted}
        return {"ticket": logs.issue(self.redis, Keys.from_config(self.config), grant),
                "pods": [p["name"] for p in chosen], "cluster": found.name}

    @route("GET", "/internal/logs")
    def internal_logs(self, request):
        """The log a ticket grants, as it comes (for the gateway; the ticket is the only key)."""
        grant = logs.redeem(self.redis, Keys.from_config(self.config), request.headers.get(TICKET_HEADER))
        if grant is None:
            raise Unauthorized("This log ticket is unknown, expired or used.")
        cluster = registry.get(self.db, grant["cluster"])
        client = self._reader(cluster)
        idle = float(self.config.get("LOG_IDLE_SECONDS", 300)) if grant["follow"] else None

        def open_one(pod):
            return reads.open_log(client, grant["namespace"], pod["name"], pod.get("container"),
                                  tail=grant["tail"], since_seconds=grant["since_seconds"],
                                  follow=grant["follow"], idle_seconds=idle)
        try:
            opened, notes = logstream.open_all(grant["pods"], open_one, ClusterError)
        except ClusterError as exc:
            raise runtime.unavailable(cluster.name, exc)
        longest = float(self.config.get("LOG_FOLLOW_MAX_SECONDS", 3600)) or None
        return streamed(request, logstream.relay(opened, grant["follow"], notes, longest))
