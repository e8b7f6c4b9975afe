"""Apply and delete requests of the deploy service, and the live objects it compares with.

``engine.apply`` / ``engine.delete`` (services/cluster/mke/engine.py) report through
the callback interface — ``log(level, line)`` for every line worth showing, then one
``done(result)`` or ``delete(result)``; ``Publishing`` turns those into bus events.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.cluster import schemas
from services.cluster.domain import registry
from services.cluster.mke import ClusterError, engine
from services.cluster.mke.kinds import kind_of
from services.cluster.models import Cluster
from shared import redact, secret_delivery
from shared.errors import Unavailable

log = logging.getLogger(__name__)


class Publishing:
    """The callback interface turned into bus events: ``cluster.log`` lines and one
    ``cluster.apply_result``.

    Log lines are batched (``logship``): staged with the result in the worker's
    transaction, shipped after the commit merged with other workers' lines."""

    def __init__(self, events, request: dict, lines, db: Session | None = None):
        self.events, self.request, self.lines, self.db = events, request, lines, db

    def log(self, level: str, line: str) -> None:
        self.lines.add(self.request.get("record_id"), self.request.get("cluster"), level, line)
        if self.db is not None and self.db.in_transaction():
            # A full batch of lines was staged in the outbox: committed now, so no transaction
            # stays open across the next Kubernetes call (they ship with the result's commit).
            self.db.commit()

    def _result(self, result: dict) -> None:
        self.lines.flush()
        self.events.publish(schemas.APPLY_RESULT, schemas.apply_result(self.request, result))

    done = delete = _result


def _refuse(callback: Publishing, reason: str, code: int, message: str) -> None:
    callback.log("error", message)
    callback.done({"ok": False, "objects": [], "error": {"reason": reason, "code": code, "message": message}})


def run_request(db: Session, clients, box, config: dict, request: dict, callback: Publishing) -> None:
    """Apply or delete the request's manifests on its cluster; the answer goes to ``callback``."""
    action = request.get("action")
    cluster = db.scalar(select(Cluster).where(Cluster.name == request.get("cluster")))
    if cluster is None:
        return _refuse(callback, "NotFound", 404, f"Cluster {request.get('cluster')!r} is not registered.")
    if action not in ("apply", "delete"):
        return _refuse(callback, "Invalid", 422, f"Unknown action {action!r}.")
    manifests = request.get("manifests") or []
    if action == "apply":
        try:  # a version's Secret: its values come sealed with the request (shared/secret_delivery.py)
            manifests = secret_delivery.fill(box, request)
        except secret_delivery.Undeliverable as exc:
            return _refuse(callback, "SecretEnvUnavailable", 422, f"Nothing was applied: {exc}.")
    # More attempts than an interactive call gets (0.5, 1, 2, 4 s apart): an API server
    # restarting for a few seconds must not fail a deploy, while a cluster that stays away
    # still fails it, visibly, within ~10 s.
    client = clients.of(cluster, attempts=int(config.get("CLUSTER_APPLY_ATTEMPTS", 5)))
    # Nothing of the database is needed while the cluster is asked (seconds, or a timeout): the
    # read transaction ends here, and the result's events open a short one of their own.
    db.commit()
    run = engine.apply if action == "apply" else engine.delete
    result = run(client, manifests, callback, request.get("namespace"))
    log.info("%s on %s: ok=%s", action, cluster.name, result["ok"],
             extra={"request_id": request.get("request_id"), "cluster": cluster.name})


def live_objects(db: Session, clients, cluster: str, namespace: str, manifests) -> list:
    """For each manifest, the object as the cluster has it now (or None); a Secret's values
    never leave this service (``redact.live``)."""
    client = clients.of(registry.get(db, cluster))
    db.commit()  # no transaction open while the cluster is asked
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
        answer.append(redact.live(live, manifest))
    return answer
