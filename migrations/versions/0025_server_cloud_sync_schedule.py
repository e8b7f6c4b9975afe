"""server: cloud accounts synced on a schedule (``sync_every_hours``, ``next_sync_at``).

A replica claims a due period by moving ``next_sync_at`` on in one conditional UPDATE
(services/server/domain/schedule.py), so every period is synced once across replicas.

Revision ID: 0025
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("server_cloud_accounts", sa.Column("sync_every_hours", sa.Integer(), nullable=True))
    op.add_column("server_cloud_accounts", sa.Column("next_sync_at", sa.DateTime(), nullable=True))
    op.create_index("ix_server_cloud_accounts_next_sync_at", "server_cloud_accounts", ["next_sync_at"])


def downgrade() -> None:
    op.drop_index("ix_server_cloud_accounts_next_sync_at", "server_cloud_accounts")
    op.drop_column("server_cloud_accounts", "next_sync_at")
    op.drop_column("server_cloud_accounts", "sync_every_hours")
