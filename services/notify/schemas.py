"""Message shapes of the notify service (RPC payloads and events).

Consumed events (envelope ``{"event_id", "type", "source", "occurred_at", "data"}``;
the mapping to public names is ``domain.events.EVENTS``):

* deploy ``succeeded`` / ``failed`` → deploy.succeeded / deploy.failed, ``DeployData``
* deploy ``build_succeeded`` / ``build_failed`` → build.succeeded / build.failed, ``BuildData``
* server ``expiring`` → server.expiring (platform channel only), ``ExpiringData``
* cluster ``unreachable`` → cluster.unreachable (platform channel only), ``UnreachableData``

RPC answers are dicts from ``domain.channels.to_dict`` (never the secret; the
URL's token masked) and ``domain.deliveries.to_dict``.
"""
from __future__ import annotations

from typing import TypedDict

from shared.build_event import BuildFinished


class DeployTarget(TypedDict):
    cluster: str
    env: str
    status: str
    reason: str | None
    message: str | None


class DeployData(TypedDict):
    record_id: int | str
    app: str
    service: str
    version: str
    action: str
    status: str
    reason: str | None
    targets: list[DeployTarget]
    created_by: str | None


BuildData = BuildFinished   # one shape with the publisher's, in shared/


class ExpiringData(TypedDict):
    server_id: int
    name: str
    ip: str
    provider: str
    expires_at: str
    days_left: int      # negative once expired
    expired: bool       # the one reminder sent after it expired unrenewed
    owner: str | None


class UnreachableData(TypedDict):
    cluster: str
    env: str
    server: str
    since: str          # RFC 3339: when its probes began to fail
    error: str | None   # the last probe's error
