"""What migrations 0028-0033 do for every service: the lease table of its chores
(``shared/db_lease.py``) and an index on its processed events' ``processed_at`` (the
retention timer deletes them by age, ``shared/retention.py``)."""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME


def add_leases_and_event_age(service: str) -> None:
    op.create_table(
        f"{service}_leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False, server_default=""),
        sa.Column("until", DATETIME(fsp=6), nullable=False),
    )
    op.create_index(f"ix_{service}_processed_events_at", f"{service}_processed_events", ["processed_at"])


def drop_leases_and_event_age(service: str) -> None:
    op.drop_index(f"ix_{service}_processed_events_at", table_name=f"{service}_processed_events")
    op.drop_table(f"{service}_leases")
