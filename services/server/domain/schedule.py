"""Cloud accounts synced on a schedule: ``sync_every_hours`` (1..168; null or 0: off).

Each account with a schedule has ``next_sync_at``. The server service's timer, on every
replica, looks for accounts whose ``next_sync_at`` has come (by the service's clock) and
``claim``s each: one conditional UPDATE moves ``next_sync_at`` one period on *only if* it
still holds the value the replica read. MariaDB runs such updates one at a time per row,
so of several replicas that saw the same due period exactly one changes the row (rowcount
1) and queues the sync; the others change nothing. The claim is the row itself, not a
Redis key: it holds across Redis restarts and is committed with the sync request (the
outbox), so a period is synced once — or, if the process dies before the commit, the
period is still due and another replica takes it.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.server.domain import fields as f
from services.server.models import CloudAccount

MIN_HOURS, MAX_HOURS = 1, 168
FIELDS = {"sync_every_hours"}


def hours(data: dict) -> int | None:
    """The ``sync_every_hours`` of a PATCH body: None (off) for null or 0, else 1..168."""
    f.reject_unknown(data, FIELDS)
    if "sync_every_hours" not in data:
        raise f.invalid("sync_every_hours", "Send sync_every_hours: hours between imports "
                                            f"({MIN_HOURS}..{MAX_HOURS}), or null or 0 to stop them.")
    value = data["sync_every_hours"]
    if value is None or value == 0:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_HOURS <= value <= MAX_HOURS:
        raise f.invalid("sync_every_hours", f"sync_every_hours must be a whole number of hours from "
                                            f"{MIN_HOURS} to {MAX_HOURS} (a week), or null or 0 for none.")
    return value


def set_every(account: CloudAccount, every: int | None, now: datetime) -> None:
    """Start, change or stop the schedule. The next import is one period after the last
    one, or now if there was none (or that moment has passed)."""
    account.sync_every_hours = every
    if every is None:
        account.next_sync_at = None
        return
    after_last = account.last_sync_at + timedelta(hours=every) if account.last_sync_at else now
    account.next_sync_at = max(after_last, now).replace(microsecond=0)


def due(session: Session, now: datetime, limit: int = 100) -> list[tuple[int, datetime]]:
    """(id, next_sync_at) of the accounts whose scheduled import is due."""
    return list(session.execute(
        select(CloudAccount.id, CloudAccount.next_sync_at)
        .where(CloudAccount.sync_every_hours.is_not(None), CloudAccount.next_sync_at <= now)
        .order_by(CloudAccount.next_sync_at).limit(limit)).all())


def claim(session: Session, account_id: int, seen: datetime, now: datetime) -> bool:
    """Take this period's import of the account: True for exactly one caller per period."""
    account = session.get(CloudAccount, account_id)
    if account is None or not account.sync_every_hours:
        return False
    following = (now + timedelta(hours=account.sync_every_hours)).replace(microsecond=0)
    result = session.execute(
        update(CloudAccount)
        .where(CloudAccount.id == account_id, CloudAccount.next_sync_at == seen)
        .values(next_sync_at=following, last_sync_status="syncing", last_sync_error=None)
        .execution_options(synchronize_session=False))
    session.expire(account)
    return result.rowcount == 1
