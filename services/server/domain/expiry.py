"""Expiry reminders: which servers are due a ``server.expiring`` today.

A server is reminded once per threshold (e.g. 30, 7 and 1 days before it
expires): on the first scan at or after the day it enters a threshold, so a
scan missed on day 7 still reminds on day 6. Once it has expired without being
renewed it is reminded once more (``expired: true``, ``days_left`` negative),
the same servers the inventory's ``expiring_within_days`` filter and the console
mark expired; a changed expiry date starts its reminders afresh. The reminder row's unique
(server_id, day) key makes that at most one reminder per server per day even
when several replicas scan at once; the row is written in the same transaction
that decides to publish, and the event leaves only after that commit.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.server.domain.fields import rfc3339
from services.server.models import ExpiryReminder, Server


# The threshold stored for the one reminder sent after a server has expired.
EXPIRED = -1


def days_left(expires_at: datetime, today: date) -> int:
    """Calendar days (UTC) from ``today`` to the expiry: 0 expires today, -2 expired two days ago."""
    return (expires_at.date() - today).days


def due_threshold(left: int, thresholds: Iterable[int], already: Iterable[int]) -> int | None:
    """The threshold to remind for now (``EXPIRED`` once it has expired), or None.

    ``already`` holds thresholds reminded for this same expiry date.
    """
    if left < 0:
        return None if EXPIRED in set(already) else EXPIRED
    candidates = sorted(t for t in set(thresholds) if t >= 0)
    current = next((t for t in candidates if left <= t), None)
    if current is None or current in set(already):
        return None
    return current


def parse_thresholds(value) -> list[int]:
    if isinstance(value, str):
        value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
    thresholds = sorted({int(v) for v in (value or [])}, reverse=True)
    if not thresholds or any(t < 0 for t in thresholds):
        raise ValueError(f"SERVER_EXPIRY_DAYS must be a list of whole days >= 0, not {value!r}")
    return thresholds


def scan_due(now: datetime, scan_at: str) -> bool:
    """Has today's scan time (UTC, ``HH:MM``) passed?"""
    hour, minute = (int(x) for x in str(scan_at).split(":"))
    return now.time() >= time(hour, minute)


def event_data(server: Server, left: int) -> dict:
    return {
        "server_id": server.id,
        "name": server.name,
        "ip": server.ip,
        "provider": server.provider,
        "expires_at": rfc3339(server.expires_at),
        "days_left": left,
        "expired": left < 0,
        "owner": server.owner,
    }


def scan(session: Session, today: date, thresholds: list[int],
         publish: Callable[[dict, str], None], new_event_id: Callable[[], str]) -> list[dict]:
    """Record and publish today's reminders; returns the data of those sent by this call.

    Looks at servers expiring before the end of the largest threshold, expired ones
    included, less those already reminded of having expired (so years of expired
    servers are not read again every day)."""
    horizon = datetime.combine(today + timedelta(days=max(thresholds) + 1), time.min)
    reminded_expired = select(ExpiryReminder.id).where(
        ExpiryReminder.server_id == Server.id, ExpiryReminder.expires_at == Server.expires_at,
        ExpiryReminder.threshold == EXPIRED)
    servers = list(session.scalars(
        select(Server).where(Server.expires_at.is_not(None), Server.expires_at < horizon,
                             ~reminded_expired.exists())
        .order_by(Server.id)))
    already: dict[int, list[int]] = {}
    if servers:
        expiry = {s.id: s.expires_at for s in servers}
        for server_id, threshold, expires_at in session.execute(
                select(ExpiryReminder.server_id, ExpiryReminder.threshold, ExpiryReminder.expires_at)
                .where(ExpiryReminder.server_id.in_(list(expiry)))):
            if expires_at == expiry[server_id]:
                already.setdefault(server_id, []).append(threshold)
    sent = []
    for server in servers:
        left = days_left(server.expires_at, today)
        threshold = due_threshold(left, thresholds, already.get(server.id, ()))
        if threshold is None:
            continue
        event_id = new_event_id()
        try:
            with session.begin_nested():
                session.add(ExpiryReminder(server_id=server.id, day=today, threshold=threshold,
                                           days_left=left, expires_at=server.expires_at,
                                           event_id=event_id))
        except IntegrityError:
            continue  # another replica reminded this server today
        data = event_data(server, left)
        publish(data, event_id)
        sent.append(data)
    return sent
