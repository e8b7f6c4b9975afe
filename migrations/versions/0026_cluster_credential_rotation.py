"""cluster: rotating a cluster's credentials and report token without re-registering it,
and announcing a cluster that stays unreachable.

* ``credentials_generation``: bumped by every credential change; part of the key under
  which each replica caches the cluster's client, so every replica builds a new one.
* ``report_token_prev_hash`` / ``report_token_prev_until``: the report token replaced
  last, still accepted until then (10 minutes), so an operator can be given the new one.
* ``unreachable_since`` / ``unreachable_announced``: when the probes began to fail, and
  whether ``cluster.unreachable`` left for that outage (one conditional UPDATE decides).

Revision ID: 0026
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cluster_clusters", sa.Column("credentials_generation", sa.Integer(), nullable=False,
                                                server_default="1"))
    op.add_column("cluster_clusters", sa.Column("report_token_prev_hash", sa.String(length=64), nullable=True))
    op.add_column("cluster_clusters", sa.Column("report_token_prev_until", sa.DateTime(), nullable=True))
    op.add_column("cluster_clusters", sa.Column("unreachable_since", sa.DateTime(), nullable=True))
    op.add_column("cluster_clusters", sa.Column("unreachable_announced", sa.Boolean(), nullable=False,
                                                server_default=sa.false()))


def downgrade() -> None:
    for column in ("unreachable_announced", "unreachable_since", "report_token_prev_until",
                   "report_token_prev_hash", "credentials_generation"):
        op.drop_column("cluster_clusters", column)
