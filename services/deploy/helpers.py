"""What the deploy service's entrypoints share: the workload policy of an app, the
audit log, and saying what a transaction decided (its outbox). Not entrypoints; the
logic stays in ``domain``."""
from __future__ import annotations

from services.deploy import metrics as deploy_metrics
from services.deploy import schemas
from services.deploy.domain import catalog, ci_builds, deploys, policy, records, request_keys, secret_env, settings
from shared.db_lease import Lease, new_holder
from shared.timeutil import utcnow


def weigh_by(key: str):
    """Weight of an event for the batch handler: the length of its ``key`` list, else one."""
    def weigh(event) -> int:
        data = event.get("data") if isinstance(event, dict) else None
        items = data.get(key) if isinstance(data, dict) else None
        return len(items) if isinstance(items, list) else 1
    return weigh


class DeployHelpers:
    """Mixed into ``DeployService``: uses its ``db``, ``config``, ``org``, ``cluster``,
    ``audit``, ``events`` and ``secrets``."""

    def _policy(self, app: str, clusters=None) -> policy.Context:
        """The workload policy for ``app``: its level (an admin may raise it to privileged)
        and the environments of ``clusters`` (none named: any environment, as at save time)."""
        level = (self.org.app_policy(app) or {}).get("pod_security")
        envs = None if clusters is None else [c.get("env") for c in clusters]
        return policy.Context.from_config(self.config, level, envs)

    def _once(self, actor, key, create, **request) -> dict:
        """``create()``'s answer, once per caller and ``Idempotency-Key`` (domain/request_keys.py)."""
        return request_keys.answer_once(self.db, actor["username"], key, request, create, utcnow())

    def _deploy_version(self, app, service, name, clusters, actor, source_ip) -> dict:
        record, outbox, image = deploys.deploy_version(self.db, app, service, name, clusters, actor["username"],
                                                       self._policy(app, clusters))
        return self._recorded(record, outbox, actor, "deploy", f"app:{app}/service:{service}/version:{name}",
                              {"clusters": deploys.cluster_names(clusters), "image": image}, source_ip)

    def _rollback(self, record_id, actor, source_ip) -> dict:
        record, source, clusters, outbox = deploys.rollback(self.db, record_id, actor["username"], self._policy)
        return self._recorded(record, outbox, actor, "rollback", f"app:{source.app}/record:{source.id}",
                              {"rollback_of": source.id, "clusters": deploys.cluster_names(clusters)}, source_ip)

    def _sweep_turn(self) -> bool:
        """Whether this replica sweeps now: one at a time, once per DEPLOY_SWEEP_SECONDS. The
        turn is a database lease (shared/db_lease.py), so sweeps go on while Redis is away; a
        holder of its own each time, so the next turn is free only once this one ran out."""
        interval = settings.setting(self.config, "DEPLOY_SWEEP_SECONDS", 5)
        return Lease(self.db.get_bind(), "deploy", "deploy-sweep", new_holder()).take(interval)

    def _audit(self, actor, action: str, target: str, details: dict, source_ip) -> None:
        self.audit.record(actor["username"], action, target, details, source_ip)

    def _recorded(self, record, outbox, actor, action: str, target: str, details: dict, source_ip) -> dict:
        """Say the new record's outbox, audit the request, answer with the record's id."""
        self._say(outbox)
        self._audit(actor, action, target, {"record_id": record.id, **details}, source_ip)
        return {"record_id": record.id}

    def _audit_secret_env(self, actor, version, before, source_ip) -> None:
        details = catalog.secret_env_change(version, before)
        if details is not None:
            self._audit(actor, "version_secret_env_changed",
                        f"app:{version.app}/service:{version.service}/version:{version.name}", details, source_ip)

    def _build_finished(self, link, build, row) -> None:
        """A recorded build of ``link``: a failure is announced; a tag's success becomes a
        version (domain/ci_builds.py) and, if the link asks, a deploy of it."""
        if build.status != "success":
            self.events.publish(schemas.BUILD_FAILED, ci_builds.build_failed(link, build))
            return
        if not build.tag:
            return
        kind, payload, version = ci_builds.version_from_build(self.db, self.secrets, link, build, row,
                                                              self._policy(link.app))
        self.events.publish(kind, payload)
        if version is None or not link.auto_deploy_env:
            return
        clusters = ci_builds.auto_deploy_clusters(link, self.cluster.list_clusters(link.auto_deploy_env))
        if not clusters:
            row.error = f"no {link.auto_deploy_env} cluster to deploy to"
            return
        row.record_id = self.deploy_version(link.app, link.service, version, clusters,
                                            ci_builds.ci_actor(link))["record_id"]

    def _say(self, outbox: records.PendingEvents | None) -> None:
        """Stage the outbox's events in this transaction (shared.outbox): they leave once it
        commits, and the relay sends them if this process dies before that."""
        if outbox is None:
            return
        for request in outbox.apply_requests:
            # a version's Secret gets its values here, sealed for this request alone
            self.events.publish(schemas.APPLY_REQUESTED, secret_env.attach(self.db, self.secrets, request))
        if outbox.lines:
            self.events.publish(schemas.LOG, schemas.log_lines(outbox.lines))
        for record, kind, data in records.finished_events(self.db, outbox.finished):
            deploy_metrics.record_finished(record, utcnow())
            self.events.publish(kind, data, event_id=schemas.record_finished_id(record.id))
