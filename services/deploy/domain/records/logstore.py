"""A record's log: storing lines so that a follower misses none, and reading them back by seq."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.deploy.domain.records.pending import MAX_LINE
from services.deploy.domain.records.views import visible_record
from services.deploy.models import LogLine
from shared.errors import Invalid
from shared.paging import clamp_limit
from shared.timeutil import parse_rfc3339, rfc3339, utcnow

LOG_INSERT = ("INSERT IGNORE INTO deploy_log_lines (line_id, record_id, time, cluster, level, line) "
              "VALUES (%s, %s, %s, %s, %s, %s)")


def logs(db: Session, record_id, after, limit) -> dict:
    visible_record(db, record_id)
    try:
        after = int(after or 0)
    except (TypeError, ValueError):
        raise Invalid("'after' must be a seq number from an earlier answer.", {"field": "after"})
    limit = clamp_limit(limit or 200) if limit else 1000
    rows = list(db.scalars(select(LogLine).where(LogLine.record_id == record_id, LogLine.id > after)
                           .order_by(LogLine.id).limit(limit)))
    return {"items": [{"seq": r.id, "time": rfc3339(r.time), "cluster": r.cluster, "level": r.level,
                       "line": r.line} for r in rows],
            "next_after": rows[-1].id if rows else after}


def store_log_lines(conn, rows: list[tuple]) -> None:
    """Insert ``rows`` (``log_rows``) so that each record's lines commit in ``seq`` order.

    A follower pages a record's log with ``?after=<seq>``, and seq is the row's
    auto-increment id. Two replicas storing lines of one record at once could commit
    the higher ids first: a follower that read them would move its cursor past the
    lower ids still being committed, and never see those lines. Locking the records'
    rows (in id order, like every other transaction that locks them) before inserting
    makes the transactions that add lines to one record take their ids one after
    another, each after the previous one committed."""
    ids = sorted({row[1] for row in rows})
    conn.exec_driver_sql(f"SELECT id FROM deploy_records WHERE id IN ({', '.join(['%s'] * len(ids))}) "
                         "ORDER BY id FOR UPDATE", tuple(ids))
    conn.exec_driver_sql(LOG_INSERT, rows)


def log_rows(events: list[dict]) -> list[tuple]:
    """Rows for ``LOG_INSERT`` from ``cluster.log``/``deploy.log`` events (one line, or ``lines``).

    A line's identity is its ``line_id`` when it carries one (the cluster service's lines
    keep theirs whether they arrive merged or as staged), else ``<event_id>:<index>``."""
    rows = []
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            continue
        data, event_id = event["data"], str(event.get("event_id") or "")[:64]
        if not event_id:
            continue
        lines = data.get("lines") if isinstance(data.get("lines"), list) else [data]
        for i, item in enumerate(lines):
            if not isinstance(item, dict) or not isinstance(item.get("record_id"), int):
                continue
            try:
                when = parse_rfc3339(item["time"]) if item.get("time") else utcnow()
            except (ValueError, TypeError, AttributeError):
                when = utcnow()
            level = item.get("level") if item.get("level") in ("info", "warning", "error") else "info"
            line_id = item.get("line_id")
            if not isinstance(line_id, str) or not line_id or len(line_id) > 80:
                line_id = event_id if len(lines) == 1 and "lines" not in data else f"{event_id}:{i}"
            rows.append((line_id, item["record_id"], when, str(item.get("cluster") or "")[:63], level,
                         str(item.get("line") or "")[:MAX_LINE]))
    return rows
