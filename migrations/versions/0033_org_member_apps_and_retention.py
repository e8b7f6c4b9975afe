"""org: a member's apps in app order from one index (``GET /apps`` paged for a member),
a lease table, and processed events indexed by age (retention).

Revision ID: 0033
Revises: 0015 (the org branch)
"""
from alembic import op

from migrations.retention import add_leases_and_event_age, drop_leases_and_event_age

revision = "0033"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_leases_and_event_age("org")
    op.create_index("ix_members_user_app", "org_members", ["user_id", "app_id"])
    op.drop_index("ix_members_user", table_name="org_members")


def downgrade() -> None:
    op.create_index("ix_members_user", "org_members", ["user_id"])
    op.drop_index("ix_members_user_app", table_name="org_members")
    drop_leases_and_event_age("org")
