"""Entrypoints of the cluster service for rotating a cluster's credentials and report token
without registering it again, and announcing a cluster that stays unreachable. A mixin of
``ClusterService`` (nameko finds inherited entrypoints); the rules are in ``domain/registry.py``.
"""
from __future__ import annotations

import logging

from services.cluster import schemas
from services.cluster.domain import registry
from shared.service import rpc
from shared.timeutil import rfc3339

log = logging.getLogger(__name__)


class RotationEntrypoints:
    @rpc
    def rotate_credentials(self, name, data, actor=None, source_ip=None):
        """``{"server"?, "ca_cert"?, "token"}``: checked against the cluster (422 saying why,
        the old ones kept) before they replace the stored ones; every replica's cached
        client is dropped by the new generation."""
        cluster = registry.get(self.db, name)
        clean = schemas.new_credentials(data, cluster.name, cluster.env, cluster.server, cluster.ca_cert)
        version = registry.verify(self.clients, clean)
        changed = sorted(k for k in ("server", "ca_cert") if clean[k] != getattr(cluster, k)) + ["token"]
        registry.replace_credentials(self.secrets, cluster, clean)
        self.clients.forget(cluster.name)
        self.audit.record((actor or {}).get("username"), "cluster_credentials_rotated", f"cluster:{cluster.name}",
                          {"changed": changed, "server": cluster.server,
                           "generation": cluster.credentials_generation}, source_ip)
        log.info("cluster credentials rotated", extra={"cluster": cluster.name})
        return {**registry.to_dict(cluster), "version": version.get("gitVersion")}

    @rpc
    def rotate_report_token(self, name, actor=None, source_ip=None):
        """A new report token, shown once; the replaced one keeps working for
        ``REPORT_TOKEN_OVERLAP_SECONDS`` (10 minutes), the one before it stops now."""
        cluster = registry.get(self.db, name)
        overlap = float(self.config.get("REPORT_TOKEN_OVERLAP_SECONDS", registry.REPORT_TOKEN_OVERLAP))
        token, until = registry.rotate_report_token(cluster, overlap)
        self.audit.record((actor or {}).get("username"), "cluster_report_token_rotated", f"cluster:{cluster.name}",
                          {"previous_valid_until": rfc3339(until)}, source_ip)
        return {"name": cluster.name, "report_token": token, "previous_valid_until": rfc3339(until)}

    def announce_unreachable(self, name: str) -> None:
        """``cluster.unreachable`` once per outage, when its probes have failed long enough."""
        after = float(self.config.get("CLUSTER_UNREACHABLE_SECONDS", registry.UNREACHABLE_AFTER))
        cluster = registry.claim_unreachable(self.db, name, after)
        if cluster is not None:
            self.events.publish(schemas.UNREACHABLE, schemas.unreachable(
                cluster.name, cluster.env, cluster.server, rfc3339(cluster.unreachable_since),
                cluster.probe_error))
            log.warning("cluster unreachable: announced", extra={"cluster": cluster.name})
        self.db.commit()
