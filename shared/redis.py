"""Redis dependency provider: one connection pool per service process."""
from __future__ import annotations

import redis
from nameko.extensions import DependencyProvider


def make_client(url: str) -> redis.Redis:
    # Short timeouts: a Redis outage must surface as an error, never a hang.
    return redis.Redis.from_url(
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
