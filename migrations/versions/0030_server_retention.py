"""server: a lease table, and processed events indexed by age (retention).

Revision ID: 0030
Revises: 0025 (the server branch)
"""
from migrations.retention import add_leases_and_event_age, drop_leases_and_event_age

revision = "0030"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_leases_and_event_age("server")


def downgrade() -> None:
    drop_leases_and_event_age("server")
