"""Deliveries: one event to one channel, sent with bounded retries, never twice.

The path of a delivery: ``plan`` inserts it as ``pending`` in the transaction
that records the event as processed (the unique (channel_id, event_id) key
means a second delivery of the event, on any replica, adds nothing); after that
commit the worker ``claim``s it (``sending``, with a lease) and tries the target
once. Accepted: ``delivered``. Refused while attempts are left: ``retrying``, its
lease set to when the next attempt is due (exponential backoff) — the worker
does not sleep through the pause, so a flaky channel holds no worker slot; the
sweep (``due``) claims it again then. Out of attempts: ``failed`` with the last
error. A replica that dies mid-way leaves a ``sending`` row whose lease runs out;
``due`` finds that too.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.notify import metrics
from services.notify.domain import channels as channel_rules
from services.notify.domain import targets
from services.notify.domain.events import PLATFORM_ONLY
from services.notify.models import Channel, Delivery, utcnow
from shared.errors import Invalid
from shared.retry import backoff_delay, retry_call


@dataclass(frozen=True)
class Policy:
    attempts: int = 5
    base: float = 2.0       # seconds before the 2nd attempt; doubles each time
    cap: float = 60.0
    timeout: float = 5.0    # per HTTP request

    @classmethod
    def from_config(cls, config: dict) -> "Policy":
        return cls(attempts=max(1, int(config.get("NOTIFY_ATTEMPTS") or 5)),
                   base=float(config.get("NOTIFY_RETRY_BASE") or 2.0),
                   cap=float(config.get("NOTIFY_RETRY_CAP") or 60.0),
                   timeout=float(config.get("NOTIFY_TIMEOUT_SECONDS") or 5.0))

    @property
    def lease_seconds(self) -> float:
        """Longer than one attempt can take: a ``sending`` row older than this was abandoned."""
        return self.timeout + 30

    def pause_after(self, attempts: int) -> float:
        """Seconds between the ``attempts``-th try and the next (base·2ⁿ, capped, ±20 %)."""
        return backoff_delay(max(0, attempts - 1), self.base, self.cap, jitter=0.2)


def plan(session: Session, event_name: str, envelope: dict) -> list[int]:
    """Insert one pending delivery per subscribed channel; returns their ids."""
    data = envelope.get("data") or {}
    query = select(Channel).where(Channel.enabled.is_(True))
    if event_name in PLATFORM_ONLY:
        query = query.where(Channel.app.is_(None))
    else:
        query = query.where(or_(Channel.app.is_(None), Channel.app == data.get("app")))
    ids = []
    for channel in session.scalars(query.order_by(Channel.id)):
        if event_name not in (channel.events or []):
            continue
        delivery = Delivery(channel_id=channel.id, app=channel.app, event_id=envelope["event_id"],
                            event=event_name, payload=envelope, status="pending", attempts=0)
        try:
            with session.begin_nested():
                session.add(delivery)
        except IntegrityError:
            continue  # this event already has its delivery to this channel
        ids.append(delivery.id)
    return ids


def claim(session: Session, delivery_id: int, lease_seconds: float, now: datetime | None = None) -> bool:
    """Take a delivery for sending; False if someone else has it, it is finished, or its
    next attempt is not due yet."""
    now = now or utcnow()
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id,
               or_(Delivery.status == "pending",
                   Delivery.status.in_(("sending", "retrying")) & (Delivery.lease_until < now)))
        .values(status="sending", lease_until=now + timedelta(seconds=lease_seconds),
                updated_at=now))
    return result.rowcount == 1


def due(session: Session, pending_grace: float, now: datetime | None = None, limit: int = 50) -> list[int]:
    """Deliveries to try now: retries whose pause is over, rows pending for a while (their
    first worker died before claiming), and sends abandoned past their lease."""
    now = now or utcnow()
    return list(session.scalars(
        select(Delivery.id).where(or_(
            (Delivery.status == "pending") & (Delivery.created_at < now - timedelta(seconds=pending_grace)),
            Delivery.status.in_(("sending", "retrying")) & (Delivery.lease_until < now)))
        .order_by(Delivery.id).limit(limit)))


def _send(box, channel: Channel, event: str, envelope: dict, console_url: str, policy: Policy, http) -> None:
    """One request to the channel's target; built afresh for each attempt, as Feishu and
    DingTalk signatures carry a timestamp."""
    outgoing = targets.build(channel.type, channel_rules.plain_url(box, channel),
                             channel_rules.plain_secret(box, channel), event, envelope, console_url)
    targets.send(outgoing, channel.type, policy.timeout, http)


def deliver(session: Session, box, delivery_id: int, *, console_url: str, policy: Policy,
            commit: Callable[[], None], http=None, now: Callable[[], datetime] = utcnow) -> Delivery | None:
    """One attempt at a claimed delivery; leaves it ``delivered``, ``retrying`` (due again after
    the backoff pause) or ``failed``, and commits."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        return None
    channel = session.get(Channel, delivery.channel_id)
    delivery.attempts = (delivery.attempts or 0) + 1
    try:
        _send(box, channel, delivery.event, delivery.payload, console_url, policy, http)
    except targets.NotAllowedError as exc:  # the guard's refusal: another try would be refused too
        delivery.status, delivery.last_error, delivery.lease_until = "failed", str(exc)[:2000], None
    except targets.DeliveryError as exc:
        delivery.last_error = str(exc)[:2000]
        if delivery.attempts < policy.attempts:
            metrics.DELIVERY_RETRIES.labels(channel.type).inc()
            delivery.status = "retrying"
            delivery.lease_until = now() + timedelta(seconds=policy.pause_after(delivery.attempts))
        else:
            delivery.status, delivery.lease_until = "failed", None
    else:
        delivery.status, delivery.delivered_at, delivery.lease_until = "delivered", now(), None
    commit()
    if delivery.status != "retrying":
        metrics.DELIVERIES.labels(channel.type, delivery.status).inc()
    return delivery


def send_test(box, channel: Channel, console_url: str, policy: Policy, sleep=time.sleep, http=None) -> dict:
    """Send a test notice now; returns how it went, raises DeliveryError if refused
    (``targets.NotAllowedError``, at once, if the guard refuses the URL)."""
    envelope = {"event_id": f"test-{int(time.time() * 1000)}", "type": "notify.test",
                "source": "notify", "occurred_at": utcnow().isoformat() + "Z",
                "data": {"title": f"MAE test message for channel {channel.name}",
                         "app": channel.app or "(platform)", "channel": channel.name}}
    tries = 0

    def once():
        nonlocal tries
        tries += 1
        _send(box, channel, "test", envelope, console_url, policy, http)

    # A person waits for this answer: short pauses (at most 2 s) between its few attempts.
    retry_call(once, attempts=policy.attempts, base=min(policy.base, 1.0), cap=min(policy.cap, 2.0),
               retry_on=(targets.DeliveryError,), sleep=sleep)
    return {"ok": True, "channel_id": channel.id, "attempts": tries}


def to_dict(delivery: Delivery, channel_name: str | None = None) -> dict:
    def ts(value):
        return None if value is None else value.replace(microsecond=0).isoformat() + "Z"

    return {
        "id": delivery.id,
        "channel_id": delivery.channel_id,
        "channel_name": channel_name,
        "app": delivery.app,
        "event": delivery.event,
        "event_id": delivery.event_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "created_at": ts(delivery.created_at),
        "updated_at": ts(delivery.updated_at),
        "delivered_at": ts(delivery.delivered_at),
    }


def recent(session: Session, app: str | None, limit=None, cursor=None) -> dict:
    """Newest first; ``cursor`` is the last id of the previous page."""
    channel_rules.check_app(app)
    try:
        limit = 50 if limit is None else int(limit)  # "limit=" is no number: refused
    except (TypeError, ValueError):
        raise Invalid("limit must be a whole number.", {"field": "limit"})
    if not 1 <= limit <= 200:
        raise Invalid("limit must be between 1 and 200.", {"field": "limit"})
    query = (select(Delivery, Channel.name).join(Channel, Channel.id == Delivery.channel_id)
             .order_by(Delivery.id.desc()).limit(limit + 1))
    query = query.where(Delivery.app.is_(None)) if app is None else query.where(Delivery.app == app)
    if cursor not in (None, ""):
        try:
            query = query.where(Delivery.id < int(str(cursor)))
        except ValueError:
            raise Invalid("cursor is not one this API gave out.", {"field": "cursor"})
    rows = session.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [to_dict(d, name) for d, name in rows],
            "next_cursor": str(rows[-1][0].id) if more else None}
