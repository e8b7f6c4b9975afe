"""Reading a version's pod logs: what a request may ask, and the ticket that carries it.

The gateway authorises a reader, then asks the cluster service (RPC ``log_ticket``) for
a ticket: 32 random bytes, kept in Redis by their SHA-256 for ``TICKET_SECONDS`` with
exactly what may be read — cluster, namespace, the pods (each with its container) and
the parameters — and redeemed once (read and deleted in one transaction) by the
cluster service's internal ``GET /internal/logs`` on its service port, which streams
the log. So the gateway never holds cluster credentials, and a ticket taken from a
log line or a network trace is worth nothing after its first use or half a minute.
"""
from __future__ import annotations

import hashlib
import json
import secrets

from shared.errors import Invalid
from shared.keys import Keys

TICKET_SECONDS = 30
MAX_TAIL = 10_000
# A follower of more pods than this names one (``pod=``): each pod is one stream from the cluster.
MAX_PODS = 20


def _whole(value, field: str, low: int, high: int | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Invalid(f"'{field}' must be a whole number.", {"field": field})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise Invalid(f"'{field}' must be a whole number, not {str(value)[:40]!r}.", {"field": field})
    if number < low or (high is not None and number > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise Invalid(f"'{field}' must be {bounds}.", {"field": field, "min": low, "max": high})
    return number


def flag(value) -> bool:
    if value in (None, "", "0", "false", "False", False, 0):
        return False
    if value in ("1", "true", "True", True, 1):
        return True
    raise Invalid("'follow' must be 1 or 0.", {"field": "follow"})


def params(tail=None, since_seconds=None, follow=None) -> dict:
    """``{"tail", "since_seconds", "follow"}`` checked: tail 1..10000, since_seconds ≥ 1, follow 0/1."""
    return {"tail": _whole(tail, "tail", 1, MAX_TAIL), "since_seconds": _whole(since_seconds, "since_seconds", 1, None),
            "follow": flag(follow)}


def _key(keys: Keys, ticket: str) -> str:
    return keys.log_ticket(hashlib.sha256(ticket.encode()).hexdigest())


def issue(redis, keys: Keys, grant: dict, seconds: int = TICKET_SECONDS) -> str:
    ticket = secrets.token_urlsafe(32)
    redis.set(_key(keys, ticket), json.dumps(grant), ex=seconds)
    return ticket


def redeem(redis, keys: Keys, ticket) -> dict | None:
    """The grant of a live ticket, once (None for an unknown, expired or used one)."""
    if not isinstance(ticket, str) or not 20 <= len(ticket) <= 100:
        return None
    pipe = redis.pipeline(transaction=True)
    pipe.get(_key(keys, ticket))
    pipe.delete(_key(keys, ticket))
    raw, _ = pipe.execute()
    return json.loads(raw) if raw else None
