"""deploy: since when the cluster has refused to create a target's pods, and what it said.

A Deployment whose ReplicaSet cannot create pods (Pod Security, a ResourceQuota, a
LimitRange, a missing service account) carries a ``ReplicaFailure`` condition; once
that has held for ``DEPLOY_REFUSED_SECONDS`` the target fails with the cluster's words.

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deploy_targets", sa.Column("refused_since", mysql.DATETIME(fsp=6), nullable=True))
    op.add_column("deploy_targets", sa.Column("refusal", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("deploy_targets", "refusal")
    op.drop_column("deploy_targets", "refused_since")
