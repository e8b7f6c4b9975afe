"""The inventory of the team's machines: create, read, search, change, remove."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.server.domain import fields as f
from services.server.domain.expiry import days_left
from services.server.models import Server
from shared.errors import NotFound

EDITABLE = {"name", "ip", "provider", "region", "instance_id", "cpu", "memory_gb",
            "expires_at", "owner", "notes"}


def clean(data: dict, *, partial: bool) -> dict:
    """The stored form of ``data``; on create ``name`` and ``ip`` are required."""
    f.reject_unknown(data, EDITABLE)
    out: dict = {}

    def present(field):
        return not partial or field in data

    if present("name"):
        out["name"] = f.name(data, "name", max_len=128, required=True)
    if present("ip"):
        out["ip"] = f.ip(data, "ip", required=True)
    if present("provider"):
        out["provider"] = f.label(data, "provider") or "manual"
    if present("region"):
        out["region"] = f.text(data, "region", max_len=64)
    if present("instance_id"):
        out["instance_id"] = f.text(data, "instance_id", max_len=128)
    if present("cpu"):
        out["cpu"] = f.positive_int(data, "cpu", maximum=4096)
    if present("memory_gb"):
        out["memory_gb"] = f.positive_number(data, "memory_gb", maximum=65536)
    if present("expires_at"):
        out["expires_at"] = f.timestamp(data, "expires_at")
    if present("owner"):
        out["owner"] = f.text(data, "owner", max_len=128)
    if present("notes"):
        out["notes"] = f.text(data, "notes", max_len=4000)
    return out


def to_dict(server: Server, now: datetime) -> dict:
    """The API's view of a server at ``now`` (naive UTC, from the service's clock).

    ``expired`` is true once ``expires_at`` has passed; ``days_left`` counts calendar
    days in UTC (0: expires today, negative: expired that many days ago) — the same
    count the expiry reminders use, so the list and the reminders agree."""
    expires = server.expires_at
    return {
        "id": server.id,
        "name": server.name,
        "ip": server.ip,
        "provider": server.provider,
        "region": server.region,
        "instance_id": server.instance_id,
        "cloud_account_id": server.cloud_account_id,
        "cloud_status": server.cloud_status,
        "cpu": server.cpu,
        "memory_gb": server.memory_gb,
        "expires_at": f.rfc3339(expires),
        "expired": expires is not None and expires <= now,
        "days_left": None if expires is None else days_left(expires, now.date()),
        "owner": server.owner,
        "notes": server.notes,
        "created_at": f.rfc3339(server.created_at),
        "updated_at": f.rfc3339(server.updated_at),
    }


def _instance_taken(session: Session, provider: str, instance_id: str | None, own_id=None) -> None:
    if not instance_id:
        return
    query = select(Server.id).where(Server.provider == provider, Server.instance_id == instance_id)
    if own_id is not None:
        query = query.where(Server.id != own_id)
    if session.scalar(query) is not None:
        from shared.errors import AlreadyExists

        raise AlreadyExists(f"A {provider} server with instance id {instance_id} exists already.",
                            {"field": "instance_id"})


def create(session: Session, data: dict) -> Server:
    values = clean(data, partial=False)
    _instance_taken(session, values["provider"], values.get("instance_id"))
    server = Server(**values)
    session.add(server)
    session.flush()
    return server


def get(session: Session, server_id) -> Server:
    server = session.get(Server, server_id) if isinstance(server_id, int) else None
    if server is None:
        raise NotFound(f"Server {server_id} was not found.", {"server_id": server_id})
    return server


def update(session: Session, server_id, data: dict) -> Server:
    server = get(session, server_id)
    values = clean(data, partial=True)
    _instance_taken(session, values.get("provider", server.provider),
                    values.get("instance_id", server.instance_id), own_id=server.id)
    for key, value in values.items():
        setattr(server, key, value)
    session.flush()
    return server


def delete(session: Session, server_id) -> None:
    session.delete(get(session, server_id))
    session.flush()


def search(session: Session, now: datetime, *, q=None, expiring_within_days=None, limit=None,
           cursor=None) -> dict:
    """A page of servers; ``expiring_within_days=N`` keeps those whose expiry falls on or
    before the last day of the next N days, already expired ones included (and marked
    ``expired``): they are the most urgent to renew."""
    limit = f.page_limit(limit)
    after = f.page_cursor(cursor)
    query = select(Server).order_by(Server.id).limit(limit + 1)
    if after is not None:
        query = query.where(Server.id > after)
    if q not in (None, ""):
        if not isinstance(q, str) or len(q) > 128:
            raise f.invalid("q", "q must be a string of at most 128 characters.")
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Server.name.like(like), Server.ip.like(like),
                                Server.owner.like(like), Server.notes.like(like),
                                Server.instance_id.like(like), Server.region.like(like)))
    if expiring_within_days not in (None, ""):
        try:
            days = int(expiring_within_days)
        except (TypeError, ValueError):
            raise f.invalid("expiring_within_days", "expiring_within_days must be a whole number.")
        if not 0 <= days <= 3650:
            raise f.invalid("expiring_within_days", "expiring_within_days must be between 0 and 3650.")
        horizon = datetime.combine(now.date() + timedelta(days=days + 1), time.min)
        query = query.where(Server.expires_at.is_not(None), Server.expires_at < horizon)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [to_dict(s, now) for s in rows],
            "next_cursor": str(rows[-1].id) if more else None}
