"""Redis dependency provider: one connection pool per service process."""
from __future__ import annotations

import redis
from nameko.extensions import DependencyProvider


class Client(redis.Redis):
    """A Redis client that keeps the Lua scripts registered on it: ``client.script(SOURCE)``
    is registered once per client, then run by EVALSHA (EVAL again only if Redis lost it)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scripts: dict[str, object] = {}

    def script(self, source: str):
        registered = self._scripts.get(source)
        if registered is None:
            registered = self._scripts[source] = self.register_script(source)
        return registered


def make_client(url: str) -> Client:
    # Short timeouts: a Redis outage must surface as an error, never a hang.
    return Client.from_url(
        url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2,
        health_check_interval=30,
    )


class Redis(DependencyProvider):
    def setup(self):
        self.client = make_client(self.container.config["REDIS_URL"])

    def stop(self):
        self.client.close()

    def get_dependency(self, worker_ctx):
        return self.client
