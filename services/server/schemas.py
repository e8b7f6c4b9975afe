"""Message shapes of the server service (RPC payloads and events).

RPC answers are plain dicts built by ``domain.inventory.to_dict`` and
``domain.accounts.to_dict``; a cloud account's secret is never in them.

Events published (envelope from ``shared.events``):

* ``server.expiring`` — public; ``ExpiringData`` below.
* ``server.cloud_sync_requested`` — internal to this service: the work queue of
  ``sync_cloud_account`` (any replica picks it up; a crashed replica's
  request is redelivered, not lost).
"""
from __future__ import annotations

from typing import TypedDict

EXPIRING = "expiring"
CLOUD_SYNC_REQUESTED = "cloud_sync_requested"


class ExpiringData(TypedDict):
    server_id: int
    name: str
    ip: str
    provider: str
    expires_at: str      # RFC 3339 UTC
    days_left: int      # negative once expired
    expired: bool       # the one reminder sent after it expired unrenewed
    owner: str | None


class CloudSyncRequestedData(TypedDict):
    account_id: int
