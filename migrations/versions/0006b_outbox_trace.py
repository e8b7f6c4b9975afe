"""outbox rows keep the trace context of the span that staged them

Revision ID: 0006b
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0006b"
down_revision = "0006"
branch_labels = None
depends_on = None

SERVICES = ("auth", "org", "deploy", "cluster", "server", "notify")


def upgrade() -> None:
    # W3C traceparent/tracestate, so the relay's late publish continues the trace.
    for service in SERVICES:
        op.add_column(f"{service}_outbox", sa.Column("trace", sa.JSON(), nullable=True))


def downgrade() -> None:
    for service in SERVICES:
        op.drop_column(f"{service}_outbox", "trace")
