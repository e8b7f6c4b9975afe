"""Cursor paging for list endpoints: ``{"items": [...], "next_cursor": ...}``.

The cursor is the last id seen, opaque to clients; ``limit`` defaults to 50
and is capped at 200, as the API says.
"""
from __future__ import annotations

import base64

from shared.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def clamp_limit(limit) -> int:
    if limit in (None, ""):
        return DEFAULT_LIMIT
    try:
        value = int(limit)
    except (TypeError, ValueError):
        raise Invalid("'limit' must be a whole number from 1 to 200.", {"field": "limit"})
    if not 1 <= value <= MAX_LIMIT:
        raise Invalid("'limit' must be a whole number from 1 to 200.", {"field": "limit"})
    return value


def encode_cursor(value) -> str:
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None):
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return int(text)
    except (ValueError, UnicodeDecodeError):
        raise Invalid("'cursor' is not one this API gave out.", {"field": "cursor"})


def page(db, stmt, id_column, limit, cursor, to_dict, descending: bool = False,
         rows: bool = False) -> dict:
    """One page of ``stmt`` ordered by ``id_column``.

    ``rows=True`` for statements that select more than one entity: ``to_dict``
    then gets the whole row, whose first element carries the id.
    """
    limit = clamp_limit(limit)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(id_column < after if descending else id_column > after)
    stmt = stmt.order_by(id_column.desc() if descending else id_column).limit(limit + 1)
    found = list(db.execute(stmt)) if rows else list(db.scalars(stmt))
    more = len(found) > limit
    found = found[:limit]
    last = (found[-1][0] if rows else found[-1]) if found else None
    return {"items": [to_dict(r) for r in found],
            "next_cursor": encode_cursor(getattr(last, id_column.key)) if more and found else None}
