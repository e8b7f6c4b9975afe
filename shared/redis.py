"""Redis dependency provider: one connection pool per service process.

``REDIS_URL`` is either one server (``redis://[[user]:password@]host:port/db``, or
``rediss://`` for TLS: redis-py's own URL forms) or a primary watched by Redis Sentinel:

    redis+sentinel://[[user]:password@]host1:port1[,host2:port2,...]/<master-name>[/<db>][?sentinel_password=...]

The hosts are the sentinels (port 26379 when left out); ``<master-name>`` is the name
the sentinels monitor (``sentinel monitor <master-name> ...``); ``<db>`` defaults to 0.
The user and password are the Redis servers' (primary and replicas); sentinels that
ask for a password of their own get ``sentinel_password`` (and ``sentinel_username``).
The client asks the sentinels for the primary before every new connection, so after a
failover (the old primary unreachable, or answering READONLY as a replica) the next
command reaches the promoted one.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from nameko.extensions import DependencyProvider
from redis.sentinel import Sentinel

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379

# Short timeouts: a Redis outage must surface as an error, never a hang.
OPTIONS = {"decode_responses": True, "socket_timeout": 2, "socket_connect_timeout": 2,
           "health_check_interval": 30}
SENTINEL_OPTIONS = {"socket_timeout": 1, "socket_connect_timeout": 1}


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


class SentinelUrl:
    """The parts of a ``redis+sentinel://`` URL (see the module's docstring)."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme != SENTINEL_SCHEME:
            raise ValueError(f"not a {SENTINEL_SCHEME}:// URL")
        userinfo, _, hosts = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        self.username, self.password = unquote(user) or None, unquote(password) or None
        self.sentinels = [_host_port(h) for h in hosts.split(",") if h.strip()]
        path = [p for p in parts.path.split("/") if p]
        if not self.sentinels or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ValueError(f"REDIS_URL must look like {SENTINEL_SCHEME}://[:password@]host:port[,host:port...]"
                             "/<master-name>[/<db>]")
        self.master, self.db = unquote(path[0]), int(path[1]) if len(path) == 2 else 0
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.sentinel_auth = {k: query[f"sentinel_{k}"] for k in ("username", "password")
                              if query.get(f"sentinel_{k}")}


def _host_port(text: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host`` (the sentinel's default port)."""
    found = re.fullmatch(r"\s*(\[[^\]]+\]|[^:\[\]]+)(?::(\d+))?\s*", text)
    if not found:
        raise ValueError(f"REDIS_URL: {text.strip()!r} is not host:port")
    return found.group(1).strip("[]"), int(found.group(2) or SENTINEL_PORT)


def endpoints(url: str) -> list[tuple[str, int]]:
    """The servers ``url`` names: the sentinels of a Sentinel URL, else its one server."""
    if isinstance(url, str) and url.startswith(SENTINEL_SCHEME + "://"):
        return SentinelUrl(url).sentinels
    parts = urlsplit(url or "")
    return [(parts.hostname, parts.port or 6379)] if parts.hostname else []


def make_client(url: str) -> Client:
    if not url.startswith(SENTINEL_SCHEME + "://"):
        return Client.from_url(url, **OPTIONS)
    parsed = SentinelUrl(url)
    sentinel = Sentinel(parsed.sentinels, sentinel_kwargs={**SENTINEL_OPTIONS, **parsed.sentinel_auth},
                        **{k: v for k, v in OPTIONS.items() if k.startswith("socket_")})
    return sentinel.master_for(parsed.master, redis_class=Client, db=parsed.db, username=parsed.username,
                               password=parsed.password, **OPTIONS)


class Redis(DependencyProvider):
    def setup(self):
        self.client = make_client(self.container.config["REDIS_URL"])

    def stop(self):
        self.client.close()

    def get_dependency(self, worker_ctx):
        return self.client
