"""notify: a lease table, and indexes for retention (deliveries and processed events by age).

Revision ID: 0029
Revises: 0024 (the notify branch)
"""
from alembic import op

from migrations.retention import add_leases_and_event_age, drop_leases_and_event_age

revision = "0029"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_leases_and_event_age("notify")
    op.create_index("ix_delivery_created", "notify_deliveries", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_created", table_name="notify_deliveries")
    drop_leases_and_event_age("notify")
