"""cluster: each application's own namespace policy (Pod Security level, quota, limits).

Set by a platform admin in org and received with ``org.app_policy_changed``; the cluster
service applies it to the app's namespace on every cluster (its PSA labels, ResourceQuota
``mae-quota`` and LimitRange ``mae-limits``) and heals drift against it.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_app_policies",
        sa.Column("app_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("app", sa.String(length=63), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("changed_at", mysql.DATETIME(fsp=6), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("app_id"),
    )


def downgrade() -> None:
    op.drop_table("cluster_app_policies")
