"""org: an application's policy overrides, set by platform admins.

``{"pod_security": "baseline"|"privileged", "quota": {...}|null, "limits": {...}|null}``;
empty (``{}``) means the platform's defaults. See services/org/domain/policy.py.

Revision ID: 0015
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("org_applications", sa.Column("policy", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("org_applications", "policy")
