"""a transactional outbox per service

Revision ID: 0006
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None

SERVICES = ("auth", "org", "deploy", "cluster", "server", "notify")


def upgrade() -> None:
    for service in SERVICES:
        op.create_table(
            f"{service}_outbox",
            sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
            sa.Column("event_id", sa.String(length=64), nullable=False),
            sa.Column("source", sa.String(length=64), nullable=False),
            sa.Column("event_type", sa.String(length=128), nullable=False),
            sa.Column("body", sa.JSON(), nullable=False),
            sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("event_id"),
        )
        op.create_index(f"ix_{service}_outbox_created_at", f"{service}_outbox", ["created_at"])


def downgrade() -> None:
    for service in SERVICES:
        op.drop_table(f"{service}_outbox")
