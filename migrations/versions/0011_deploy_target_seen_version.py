"""deploy: the order key of the last report a target accepted (shared/reportorder.py).

Revision ID: 0011
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deploy_targets", sa.Column("seen_version", sa.String(80), nullable=True))
    op.execute("UPDATE deploy_targets SET seen_version = LPAD(seen_rv, 19, '0') WHERE seen_rv IS NOT NULL")


def downgrade() -> None:
    op.drop_column("deploy_targets", "seen_version")
