"""Message shapes of the notify service (RPC payloads and events).

Consumed events (envelope ``{"event_id", "type", "source", "occurred_at", "data"}``;
the mapping to public names is ``domain.events.EVENTS``):

* deploy ``succeeded`` / ``failed`` → deploy.succeeded / deploy.failed, ``DeployData``
* deploy ``build_succeeded`` / ``build_failed`` → build.succeeded / build.failed, ``BuildData``
* server ``expiring`` → server.expiring (platform channel only), ``ExpiringData``

RPC answers are dicts from ``domain.channels.to_dict`` (never the secret; the
URL's token masked) and ``domain.deliveries.to_dict``.
"""
from __future__ import annotations

from typing import TypedDict


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


class BuildData(TypedDict):
    app: str
    service: str
    ref: str
    image: str | None
    build_number: int | str
    status: str
    link: str | None
    reason: str | None


class ExpiringData(TypedDict):
    server_id: int
    name: str
    ip: str
    provider: str
    expires_at: str
    days_left: int      # negative once expired
    expired: bool       # the one reminder sent after it expired unrenewed
    owner: str | None
