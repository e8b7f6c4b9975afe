"""deploy: Idempotency-Key of the requests that create a record (domain/request_keys.py).

Revision ID: 0009
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_request_keys",
        sa.Column("actor", sa.String(64), primary_key=True),
        sa.Column("key_hash", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"), nullable=False),
    )
    op.create_index("ix_deploy_request_keys_created", "deploy_request_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_deploy_request_keys_created", table_name="deploy_request_keys")
    op.drop_table("deploy_request_keys")
