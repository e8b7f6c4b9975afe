"""cluster: a lease table, and indexes for retention (reports and processed events by age).

Revision ID: 0031
Revises: 0026 (the cluster branch)
"""
from alembic import op

from migrations.retention import add_leases_and_event_age, drop_leases_and_event_age

revision = "0031"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_leases_and_event_age("cluster")
    op.create_index("ix_cluster_reports_received", "cluster_reports", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_cluster_reports_received", table_name="cluster_reports")
    drop_leases_and_event_age("cluster")
