"""Entrypoints of the cluster service (MKE): registry, apply/delete, namespaces, operator reports.

Kept thin: validation in ``schemas``, the registry, namespaces and reports in
``domain``, everything that talks to a cluster in ``mke``. One client per
cluster is cached in the process (``_clients``), rebuilt when the stored
credentials change.
"""
from __future__ import annotations

import hashlib
import logging
import os

import eventlet
from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import select

from services.cluster import metrics as cluster_metrics
from services.cluster import schemas
from services.cluster.domain import defences, namespaces, registry, reports
from services.cluster.intake import ReportIntake
from services.cluster.logship import LogShipper
from services.cluster.mke import ClusterClient, ClusterError, engine
from services.cluster.mke.kinds import kind_of
from services.cluster.models import Cluster, ProcessedEvent
from shared import redact, secret_delivery
from shared.audit import AuditLog
from shared.errors import AlreadyExists, BadRequest, Invalid, NotFound, Unavailable
from shared.events import EventPublisher, handle_event
from shared.idempotency import first_delivery
from shared.keys import Keys
from shared.rpc import ServiceRpc
from shared.secretbox import Secrets
from shared.service import ServiceBase, rpc
from shared.timeutil import parse_rfc3339, utcnow
from shared.web import parse_object

log = logging.getLogger(__name__)

# How often each replica probes clusters, retries namespaces and republishes
# reports left unpublished (only one replica does a cluster's round at a time).
TEND_SECONDS = float(os.environ.get("CLUSTER_TEND_SECONDS", "10"))
# Concurrent namespace requests per cluster during a fan-out.
FANOUT_CONCURRENCY = 8
# How often a cluster's namespaces are compared with what MAE made (NAMESPACE_HEAL_SECONDS):
# three paged LISTs per cluster, so not every tend.
HEAL_SECONDS = 300.0

_clients: dict[str, tuple[str, ClusterClient]] = {}


class _Publishing:
    """The seed's callback interface (done / log / delete) turned into bus events.

    Log lines are batched (``logship``): staged with the result in the worker's
    transaction, shipped after the commit merged with other workers' lines."""

    def __init__(self, events, request: dict, lines):
        self.events, self.request, self.lines = events, request, lines

    def log(self, level: str, line: str) -> None:
        self.lines.add(self.request.get("record_id"), self.request.get("cluster"), level, line)

    def _result(self, result: dict) -> None:
        r = self.request
        self.lines.flush()
        self.events.publish("apply_result", {
            "request_id": r.get("request_id"), "record_id": r.get("record_id"), "cluster": r.get("cluster"),
            "namespace": r.get("namespace"), "action": r.get("action"), **result})

    done = delete = _result


class ClusterService(ServiceBase):
    name = "cluster"

    config = Config()
    secrets = Secrets()
    events = EventPublisher()
    log_lines = LogShipper()
    intake = ReportIntake()
    audit = AuditLog()
    org = ServiceRpc("org")

    # ------------------------------------------------------------ clients
    def _client(self, cluster: Cluster, **options) -> ClusterClient:
        fingerprint = hashlib.sha256(
            f"{cluster.server}|{cluster.token_sealed}|{cluster.ca_cert}|{sorted(options.items())}".encode()
        ).hexdigest()
        key = f"{cluster.name}|{sorted(options)}"
        cached = _clients.get(key)
        if cached and cached[0] == fingerprint:
            return cached[1]
        if cached:
            cached[1].close()
        server, ca, token = registry.credentials(self.secrets, cluster)
        client = ClusterClient(cluster.name, server, ca, token, **self._client_options(**options))
        _clients[key] = (fingerprint, client)
        return client

    def _client_options(self, **overrides) -> dict:
        cfg = self.config
        options = {"connect_timeout": float(cfg.get("CLUSTER_CONNECT_TIMEOUT", 5)),
                   "read_timeout": float(cfg.get("CLUSTER_READ_TIMEOUT", 20)),
                   "attempts": int(cfg.get("CLUSTER_ATTEMPTS", 3)),
                   "backoff": float(cfg.get("CLUSTER_BACKOFF", 0.5))}
        options.update(overrides)
        return options

    # ----------------------------------------------------------- registry
    @rpc
    def register_cluster(self, data, actor=None, source_ip=None):
        """Check the credentials against the cluster, then store them (sealed)."""
        data = schemas.registration(data)
        if registry.exists(self.db, data["name"]):  # before asking the cluster anything
            raise AlreadyExists(f"A cluster called {data['name']!r} is registered already.",
                                {"cluster": data["name"]})
        probe = ClusterClient(data["name"], data["server"], data["ca_cert"], data["token"],
                              **self._client_options(attempts=2))
        try:
            version = probe.check()
        except ClusterError as exc:
            raise Invalid(f"The cluster refused these credentials: {exc.reason}: {exc.message}",
                          {"cluster": data["name"], "reason": exc.reason, "code": exc.code})
        finally:
            probe.close()
        cluster, report_token = registry.create(self.db, self.secrets, data)
        self.events.publish("registered", {"name": cluster.name, "env": cluster.env})
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
        for key in [k for k in _clients if k.startswith(f"{name}|")]:
            _clients.pop(key)[1].close()
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
            self.events.publish("resource_status", data, event_id=event_id)

    # -------------------------------------------------------- apply/delete
    @handle_event("deploy", "apply_requested")
    def on_apply_requested(self, event):
        # Not deduplicated: a redelivered request is applied again (apply is idempotent)
        # and answered again, as docs/contracts.md says.
        request = event.get("data") or {}
        callback = _Publishing(self.events, request, self.log_lines)
        action = request.get("action")
        cluster = self.db.scalar(select(Cluster).where(Cluster.name == request.get("cluster")))
        if cluster is None or action not in ("apply", "delete"):
            error = {"reason": "NotFound", "code": 404,
                     "message": f"Cluster {request.get('cluster')!r} is not registered."} if cluster is None else \
                {"reason": "Invalid", "code": 422, "message": f"Unknown action {action!r}."}
            callback.log("error", error["message"])
            callback.done({"ok": False, "objects": [], "error": error})
            return
        # More attempts than an interactive call gets (0.5, 1, 2, 4 s apart): an API server
        # that restarts for a few seconds must not fail a deploy (the fault suite saw one fail
        # after 1.5 s); a cluster that stays away still fails it, visibly, within ~10 s.
        manifests = request.get("manifests") or []
        if action == "apply":
            try:  # a version's Secret: its values come sealed with the request (shared/secret_delivery.py)
                manifests = secret_delivery.fill(self.secrets, request)
            except secret_delivery.Undeliverable as exc:
                error = {"reason": "SecretEnvUnavailable", "code": 422, "message": f"Nothing was applied: {exc}."}
                callback.log("error", error["message"])
                callback.done({"ok": False, "objects": [], "error": error})
                return
        client = self._client(cluster, attempts=int(self.config.get("CLUSTER_APPLY_ATTEMPTS", 5)))
        run = engine.apply if action == "apply" else engine.delete
        result = run(client, manifests, callback, request.get("namespace"))
        log.info("%s on %s: ok=%s", action, cluster.name, result["ok"],
                 extra={"request_id": request.get("request_id"), "cluster": cluster.name})

    @rpc
    def live_objects(self, cluster, namespace, manifests):
        """For each manifest, the object as the cluster has it now (or None)."""
        found = registry.get(self.db, cluster)
        client = self._client(found)
        answer = []
        for manifest in manifests or []:
            try:
                kind = kind_of(manifest)
                name = (manifest.get("metadata") or {}).get("name")
                live = client.get(kind, namespace if kind.namespaced else None, name)
            except KeyError:
                live = None
            except ClusterError as exc:
                raise Unavailable(f"Cluster {cluster!r} did not answer: {exc.reason}: {exc.message}",
                                  {"cluster": cluster, "reason": exc.reason})
            if live:
                (live.get("metadata") or {}).pop("managedFields", None)
            answer.append(redact.live(live, manifest))  # a Secret's values never leave this service
        return answer

    # ---------------------------------------------------------- namespaces
    @rpc
    def namespace_taken(self, name):
        """The reachable clusters on which a namespace ``name`` exists already (for a new app:
        MAE never takes over a namespace). Clusters that do not answer are left out: if the
        namespace turns out to exist there, the fan-out refuses to adopt it, visibly."""
        if not isinstance(name, str) or not name:
            return []
        clusters = list(self.db.scalars(select(Cluster).where(Cluster.reachable.is_not(False))))
        self.db.commit()
        taken = []

        def probe(cluster):
            try:
                if namespaces.exists(self._client(cluster, attempts=1), name):
                    taken.append(cluster.name)
            except ClusterError:
                pass

        pool = eventlet.GreenPool(FANOUT_CONCURRENCY)
        for cluster in clusters:
            pool.spawn_n(probe, cluster)
        pool.waitall()
        return sorted(taken)

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
        clusters = list(self.db.scalars(select(Cluster.name)))
        namespaces.want_everywhere(self.db, name, clusters, desired, app_id)
        self.db.commit()  # the intent is safe before any cluster is asked
        for cluster in clusters:
            self._reconcile(cluster, names={name})

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
        clusters = list(self.db.scalars(select(Cluster.name)))
        self.db.commit()
        for cluster in clusters:
            self._reconcile(cluster, names={name})

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
        self._reconcile(name)

    def _reconcile(self, cluster_name: str, names: set | None = None, attempts: int | None = None) -> dict:
        """Bring the cluster's namespaces to what the rows want; stops at the first
        transient failure (a cluster that is down is not asked a thousand times)."""
        cluster = self.db.scalar(select(Cluster).where(Cluster.name == cluster_name))
        if cluster is None:
            return {}
        rows = [(r.id, r.namespace, r.desired, r.app_id) for r in namespaces.work(self.db, cluster_name)
                if names is None or r.namespace in names]
        policy_of = namespaces.policies(self.db, [r[3] for r in rows if r[2] == "present"])
        self.db.commit()
        if not rows:
            return {"done": 0}
        client = self._client(cluster, **({"attempts": attempts} if attempts else {}))
        settings = defences.Settings.from_config(self.config)
        outcomes: list[tuple[int, str, ClusterError | None]] = []
        stop = []

        def one(row):
            row_id, namespace, desired, app_id = row
            if stop:
                return
            try:
                namespaces.enact(client, namespace, desired, app_id,
                                 defences.for_app(settings, policy_of.get(app_id)))
                outcomes.append((row_id, desired, None))
            except ClusterError as exc:
                outcomes.append((row_id, desired, exc))
                if exc.transient:
                    stop.append(exc)

        pool = eventlet.GreenPool(FANOUT_CONCURRENCY)
        for row in rows:
            pool.spawn_n(one, row)
        pool.waitall()
        for row_id, desired, error in outcomes:
            namespaces.record(self.db, row_id, desired, error)
        if stop:
            # Rows never tried stay pending; the cluster is visibly unreachable.
            cluster.reachable, cluster.probe_error, cluster.probed_at = False, str(stop[0])[:1000], utcnow()
        self.db.commit()
        return {"done": sum(1 for o in outcomes if o[2] is None), "failed": sum(1 for o in outcomes if o[2])}

    @rpc
    def reconcile(self, name):
        """Probe one cluster, heal and retry its namespaces now (the timer does this by itself)."""
        registry.get(self.db, name)
        return self._tend_one(name, heal=True)

    def _heal_due(self, name: str) -> bool:
        """Every NAMESPACE_HEAL_SECONDS per cluster, whichever replica tends it (0: every tend)."""
        seconds = float(self.config.get("NAMESPACE_HEAL_SECONDS", HEAL_SECONDS) or 0)
        if seconds <= 0:
            return True
        key = Keys.from_config(self.config).lock(f"cluster-heal:{name}")
        return bool(self.redis.set(key, "1", nx=True, px=max(1, int(seconds * 1000))))

    def _heal(self, cluster: Cluster) -> int | None:
        """Compare the cluster's MAE namespaces, quotas and limit ranges with the rows that
        are in place, and set the drifted ones back to pending (the reconcile that follows
        puts them right). Costs three paged LISTs and one SELECT; writes only drifted rows."""
        name = cluster.name
        rows = namespaces.kept(self.db, name)
        policy_of = namespaces.policies(self.db, [r[2] for r in rows])
        self.db.commit()
        if not rows:
            return 0
        try:
            found = namespaces.survey(self._client(cluster, attempts=1))
        except ClusterError as exc:
            log.warning("healing namespaces skipped: %s", exc, extra={"cluster": name})
            return None
        drifted = namespaces.drifted(rows, found, defences.Settings.from_config(self.config), policy_of)
        for i, (_, namespace, what) in enumerate(drifted):
            cluster_metrics.namespace_drifted(name, what)
            if i < 20:  # a changed default drifts every namespace: the first few say which
                log.warning("namespace %s drifted on %s (%s): healing", namespace, name, ", ".join(what),
                            extra={"cluster": name, "namespace": namespace})
        if drifted:
            log.warning("%d namespaces drifted on %s: healing", len(drifted), name, extra={"cluster": name})
            namespaces.retry(self.db, drifted)
            self.db.commit()
        return len(drifted)

    # ----------------------------------------------------------------- tend
    @timer(interval=TEND_SECONDS)
    def tend(self):
        """Probe every cluster, retry its namespaces, publish reports left unpublished."""
        for name in list(self.db.scalars(select(Cluster.name))):
            lock = Keys.from_config(self.config).lock(f"cluster-tend:{name}")
            if not self.redis.set(lock, "1", nx=True, ex=max(5, int(TEND_SECONDS * 3))):
                continue  # another replica tends this one
            try:
                self._tend_one(name)
            except Exception:  # one cluster's trouble must not stop the others
                log.exception("tending cluster failed", extra={"cluster": name})
                self.db.rollback()
            finally:
                self.redis.delete(lock)
        for cluster, rows in reports.take_unpublished(self.db).items():
            self._announce(cluster, rows)

    def _tend_one(self, name: str, heal: bool = False) -> dict:
        cluster = self.db.scalar(select(Cluster).where(Cluster.name == name))
        if cluster is None:
            return {}
        client = self._client(cluster, attempts=1)
        try:
            client.check()
            cluster.reachable, cluster.probe_error = True, None
        except ClusterError as exc:
            cluster.reachable, cluster.probe_error = False, str(exc)[:1000]
        cluster.probed_at = utcnow()
        reachable = cluster.reachable
        self.db.commit()
        result = {"reachable": reachable}
        if reachable:
            if heal or self._heal_due(name):
                result["drifted"] = self._heal(cluster)
            result.update(self._reconcile(name))
        return result


def _occurred(event: dict):
    """When the event happened (its envelope's ``occurred_at``), or now."""
    try:
        return parse_rfc3339(event.get("occurred_at") or "")
    except (TypeError, ValueError):
        return utcnow()


__all__ = ["ClusterService", "NotFound"]
