"""cluster: the application (its id, not only its name) each namespace row is for.

A namespace MAE creates is marked with the app's id (annotation ``mae.io/app-id``); MAE
adopts, keeps or deletes only namespaces carrying that mark for that app.

Revision ID: 0013
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cluster_namespaces", sa.Column("app_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("cluster_namespaces", "app_id")
