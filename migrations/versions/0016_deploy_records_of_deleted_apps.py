"""deploy: records of a deleted application are kept for audit under its id, and never
shown to a later application of the same name (services/deploy/domain/lifecycle.py).

Revision ID: 0016
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deploy_records", sa.Column("deleted_app_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("deploy_records", "deleted_app_id")
