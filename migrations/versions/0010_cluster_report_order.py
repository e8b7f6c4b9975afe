"""cluster: the order of a stored report (shared/reportorder.py), not only its resourceVersion.

Revision ID: 0010
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cluster_reports", sa.Column("version_key", sa.String(80), nullable=False, server_default=""))
    # Rows stored so far are ordered by their resourceVersion alone.
    op.execute("UPDATE cluster_reports SET version_key = LPAD(resource_version, 19, '0')")


def downgrade() -> None:
    op.drop_column("cluster_reports", "version_key")
