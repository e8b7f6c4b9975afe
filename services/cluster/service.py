"""Entrypoints of the cluster service: registry, apply/delete, namespaces, operator reports.

Kept thin: validation and event shapes in ``schemas``; the registry, namespaces,
apply requests and reports in ``domain``; everything that talks to a cluster in
``mke`` (the service's Kubernetes engine), whose clients — one per cluster, rebuilt
when its stored credentials change — are the ``clients`` dependency.
"""
from __future__ import annotations

import logging
import os

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import select

from services.cluster import metrics as cluster_metrics
from services.cluster import schemas
from services.cluster.domain import applying, fanout, namespaces, registry, reports
from services.cluster.intake import ReportIntake
from services.cluster.logship import LogShipper
from services.cluster.mke.clients import ClusterClients
from services.cluster.retention import Retention
from services.cluster.models import Cluster, ProcessedEvent
from services.cluster.rotation import RotationEntrypoints
from services.cluster.runtime import RuntimeEntrypoints
from shared.audit import AuditLog
from shared.errors import AlreadyExists, BadRequest
from shared.events import EventPublisher, handle_event
from shared.processed_events import first_delivery
from shared.rpc import ServiceRpc
from shared.secretbox import Secrets
from shared.service import ServiceBase, rpc
from shared.timeutil import parse_rfc3339, utcnow
from shared.web import parse_object

log = logging.getLogger(__name__)

# How often each replica probes clusters, retries namespaces and republishes
# reports left unpublished (only one replica does a cluster's round at a time).
TEND_SECONDS = float(os.environ.get("CLUSTER_TEND_SECONDS", "10"))


class ClusterService(RuntimeEntrypoints, RotationEntrypoints, Retention, ServiceBase):
    name = "cluster"

    config = Config()
    secrets = Secrets()
    events = EventPublisher()
    log_lines = LogShipper()
    intake = ReportIntake()
    audit = AuditLog()
    org = ServiceRpc("org")
    clients = ClusterClients()

    # ----------------------------------------------------------- registry
    @rpc
    def register_cluster(self, data, actor=None, source_ip=None):
        """Check the credentials against the cluster, then store them (sealed)."""
        data = schemas.registration(data)
        if registry.exists(self.db, data["name"]):  # before asking the cluster anything
            raise AlreadyExists(f"A cluster called {data['name']!r} is registered already.",
                                {"cluster": data["name"]})
        version = registry.verify(self.clients, data)
        cluster, report_token = registry.create(self.db, self.secrets, data)
        self.events.publish(schemas.REGISTERED, schemas.registered(cluster.name, cluster.env))
        self.audit.record((actor or {}).get("username"), "cluster_registered", f"cluster:{cluster.name}",
                          {"env": cluster.env, "server": cluster.server}, source_ip)
        log.info("cluster registered", extra={"cluster": cluster.name, "env": cluster.env})
        return {**registry.to_dict(cluster), "report_token": report_token,
                "version": version.get("gitVersion")}

    @rpc
    def list_clusters(self, env=None):
        stmt = select(Cluster).order_by(Cluster.name)
        if env is not None:
            stmt = stmt.where(Cluster.env == env)
        return [registry.to_dict(c) for c in self.db.scalars(stmt)]

    @rpc
    def get_cluster(self, name, detail=False):
        cluster = registry.get(self.db, name)
        data = registry.to_dict(cluster)
        if detail:
            data["namespaces"] = namespaces.summary(self.db, cluster.name)
        return data

    @rpc
    def delete_cluster(self, name, actor=None, source_ip=None):
        cluster = registry.get(self.db, name)
        registry.remove(self.db, cluster)
        self.clients.forget(name)
        self.audit.record((actor or {}).get("username"), "cluster_deleted", f"cluster:{name}", {}, source_ip)
        return None

    @rpc
    def latest_reports(self, name, namespace=None):
        registry.get(self.db, name)
        return reports.latest(self.db, name, namespace)

    # ------------------------------------------------------ operator intake
    @rpc
    def ingest_reports(self, name, report_token, items, full_state=None):
        """Check one POST, then hand it to the intake (``intake``), which authenticates it: the
        reports are stored set-based, together with the other intakes waiting at that
        moment, in one transaction that also stages their announcement —
        ``cluster.resource_status`` events carrying ``reports: [...]`` (docs/contracts.md)
        — in the outbox. The answer comes once that committed, so the gateway's 202
        means "stored, and will be announced": committed reports are never unannounced,
        even if this process dies right after the commit (the outbox relay sends them).
        """
        if not registry.reporter_shape_ok(name, report_token):
            raise registry.refused()
        clean = schemas.reports(items)
        state = schemas.full_state(full_state)
        # The token is checked against the cluster's row in the intake's transaction,
        # under that row's lock: this worker itself never waits for the database.
        answer = self.intake(name, report_token, clean, state)
        cluster_metrics.reports_ingested(name, answer)
        return answer

    @rpc
    def ingest_reports_body(self, name, report_token, body):
        """``ingest_reports`` of the POST body as the operator sent it (a JSON string, which
        the gateway hands on unparsed): ``{"reports": [...], "full_state"?: {...}}``."""
        data = parse_object(body)
        if "reports" not in data:
            raise BadRequest("The body must be {\"reports\": [...]}.")
        return self.ingest_reports(name, report_token, data["reports"], data.get("full_state"))

    def _announce(self, cluster: str, accepted: list[dict]) -> None:
        for event_id, data in reports.batch_events(cluster, accepted):
            self.events.publish(schemas.RESOURCE_STATUS, data, event_id=event_id)

    # -------------------------------------------------------- apply/delete
    @handle_event("deploy", "apply_requested")
    def on_apply_requested(self, event):
        # Not deduplicated: a redelivered request is applied again (apply is idempotent)
        # and answered again, as docs/contracts.md says.
        request = event.get("data") or {}
        callback = applying.Publishing(self.events, request, self.log_lines, self.db)
        applying.run_request(self.db, self.clients, self.secrets, self.config, request, callback)

    @rpc
    def live_objects(self, cluster, namespace, manifests):
        """For each manifest, the object as the cluster has it now (or None)."""
        return applying.live_objects(self.db, self.clients, cluster, namespace, manifests)

    # ---------------------------------------------------------- namespaces
    @rpc
    def namespace_taken(self, name):
        """The reachable clusters on which a namespace ``name`` exists already (for a new app:
        MAE never takes over a namespace). Clusters that do not answer are left out: if the
        namespace turns out to exist there, the fan-out refuses to adopt it, visibly."""
        if not isinstance(name, str) or not name:
            return []
        return fanout.taken(self.db, self.clients, name)

    @handle_event("org", "application_created")
    def on_application_created(self, event):
        self._want_everywhere(event, "present")

    @handle_event("org", "application_deleted")
    def on_application_deleted(self, event):
        self._want_everywhere(event, "absent")

    def _want_everywhere(self, event, desired):
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        data = event.get("data") or {}
        name, app_id = data.get("name"), data.get("app_id")
        if desired == "present":
            namespaces.keep_policies(self.db, [(app_id, name, data.get("policy"))], _occurred(event))
        else:
            namespaces.forget_policy(self.db, app_id)
        namespaces.want_everywhere(self.db, name, list(self.db.scalars(select(Cluster.name))), desired, app_id)
        self.db.commit()  # the intent is safe before any cluster is asked
        fanout.everywhere(self.db, self.clients, self.config, name)

    @handle_event("org", "app_policy_changed")
    def on_app_policy_changed(self, event):
        """An admin set the app's own Pod Security level, quota or limits (null: the
        configured default): kept here, then its namespace on every cluster is enacted
        again — labels, LimitRange and ResourceQuota replaced where they differ."""
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        data = event.get("data") or {}
        name, app_id = data.get("app"), data.get("app_id")
        if not isinstance(name, str) or not name or not isinstance(app_id, int) or isinstance(app_id, bool):
            log.warning("app_policy_changed without an app name and id: ignored",
                        extra={"event_id": event.get("event_id")})
            self.db.commit()
            return
        namespaces.keep_policies(self.db, [(app_id, name, data.get("policy") or {})], _occurred(event))
        namespaces.redo(self.db, name, app_id)
        self.db.commit()
        fanout.everywhere(self.db, self.clients, self.config, name)

    @handle_event("cluster", "registered")
    def on_cluster_registered(self, event):
        if not first_delivery(self.db, ProcessedEvent, event):
            return
        name = event["data"]["name"]
        if not registry.exists(self.db, name):
            return
        asked = utcnow()
        apps = self.org.all_apps()
        # [id, name, policy]: the policies are org's as of this call (newer events still win)
        namespaces.keep_policies(self.db, [e for e in namespaces.app_entries(apps) if e[2] is not None], asked)
        namespaces.want_on_cluster(self.db, name, apps)
        self.db.commit()
        fanout.fan_out(self.db, self.clients, self.config, name)

    @rpc
    def reconcile(self, name):
        """Probe one cluster, heal and retry its namespaces now (the timer does this by itself)."""
        registry.get(self.db, name)
        return fanout.tend(self.db, self.clients, self.config, name, heal_now=True)

    # ----------------------------------------------------------------- tend
    @timer(interval=TEND_SECONDS)
    def tend(self):
        """Probe every cluster, retry its namespaces, publish reports left unpublished."""
        for name in list(self.db.scalars(select(Cluster.name))):
            # A database lease, not a Redis lock: tending goes on while Redis is away.
            lease = fanout.tend_lease(self.db, name)
            if not lease.take(max(5, TEND_SECONDS * 3)):
                continue  # another replica tends this one
            try:
                fanout.tend(self.db, self.clients, self.config, name, lease=lease)
                self.announce_unreachable(name)
            except Exception:  # one cluster's trouble must not stop the others
                log.exception("tending cluster failed", extra={"cluster": name})
                self.db.rollback()
            finally:
                lease.give_up()
        for cluster, rows in reports.take_unpublished(self.db).items():
            self._announce(cluster, rows)


def _occurred(event: dict):
    """When the event happened (its envelope's ``occurred_at``), or now."""
    try:
        return parse_rfc3339(event.get("occurred_at") or "")
    except (TypeError, ValueError):
        return utcnow()


__all__ = ["ClusterService"]
