"""auth: a lease table, and indexes for retention (ended sessions, processed events by age).

Revision ID: 0032
Revises: 0021 (the auth branch)
"""
from alembic import op

from migrations.retention import add_leases_and_event_age, drop_leases_and_event_age

revision = "0032"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_leases_and_event_age("auth")
    op.create_index("ix_tokens_kind_expires", "auth_tokens", ["kind", "expires_at"])
    op.create_index("ix_tokens_kind_revoked", "auth_tokens", ["kind", "revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_tokens_kind_revoked", table_name="auth_tokens")
    op.drop_index("ix_tokens_kind_expires", table_name="auth_tokens")
    drop_leases_and_event_age("auth")
