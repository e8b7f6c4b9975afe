"""Time in MAE: naive UTC in MySQL, RFC 3339 strings ending in Z on the wire."""
from __future__ import annotations

from datetime import datetime, timezone


def utcnow() -> datetime:
    """Naive UTC, as stored in MySQL DATETIME columns."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    # isoformat, not strftime: glibc's strftime re-reads the timezone on every
    # call, which made formatting a list of records dominate its request time.
    return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 time (``Z`` or an offset) to naive UTC; ``ValueError`` if it is not one."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)
