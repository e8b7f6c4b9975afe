"""``ClusterClients``: the cluster service's API clients, one per cluster and options, kept
for the life of the process and rebuilt when the cluster's stored credentials change (a
rotation re-seals the token, so every replica sees a new fingerprint on its next use).

Building a client costs a TLS context and a connection pool; a cached one reuses both,
so a fan-out over many namespaces does not reconnect for each request.
"""
from __future__ import annotations

import hashlib

from nameko.extensions import DependencyProvider

from services.cluster.domain import registry
from services.cluster.mke.client import ClusterClient
from services.cluster.models import Cluster
from shared.secretbox import SecretBox


def client_options(config: dict, **overrides) -> dict:
    """Timeouts and attempts of a cluster client (``CLUSTER_*`` settings), with ``overrides``."""
    options = {"connect_timeout": float(config.get("CLUSTER_CONNECT_TIMEOUT", 5)),
               "read_timeout": float(config.get("CLUSTER_READ_TIMEOUT", 20)),
               "attempts": int(config.get("CLUSTER_ATTEMPTS", 3)),
               "backoff": float(config.get("CLUSTER_BACKOFF", 0.5))}
    options.update(overrides)
    return options


class Clients:
    """What a worker gets: ``clients.of(cluster, attempts=1)``, ``clients.probe(...)``, ``clients.forget(name)``."""

    def __init__(self, config: dict, box: SecretBox, cache: dict):
        self.config, self.box, self.cache = config, box, cache

    def of(self, cluster: Cluster, **options) -> ClusterClient:
        """The cached client of a registered cluster (``options`` override the settings)."""
        fingerprint = hashlib.sha256(
            f"{cluster.server}|{cluster.token_sealed}|{cluster.ca_cert}|{sorted(options.items())}".encode()
        ).hexdigest()
        key = f"{cluster.name}|{sorted(options)}"
        cached = self.cache.get(key)
        if cached and cached[0] == fingerprint:
            return cached[1]
        if cached:
            cached[1].close()
        server, ca, token = registry.credentials(self.box, cluster)
        client = ClusterClient(cluster.name, server, ca, token, **client_options(self.config, **options))
        self.cache[key] = (fingerprint, client)
        return client

    def probe(self, name: str, server: str, ca_cert: str, token: str, **options) -> ClusterClient:
        """A client for credentials not stored yet (not cached: the caller closes it)."""
        return ClusterClient(name, server, ca_cert, token, **client_options(self.config, **options))

    def forget(self, name: str) -> None:
        for key in [k for k in self.cache if k.startswith(f"{name}|")]:
            self.cache.pop(key)[1].close()


class ClusterClients(DependencyProvider):
    """The ``clients`` dependency of the cluster service (see ``Clients``)."""

    def setup(self):
        self.box = SecretBox.from_config(self.container.config)
        self.cache: dict[str, tuple[str, ClusterClient]] = {}

    def stop(self):
        for _, client in self.cache.values():
            client.close()
        self.cache.clear()

    def get_dependency(self, worker_ctx):
        return Clients(self.container.config, self.box, self.cache)
