"""auth: token scope, and what a login session came from.

* ``auth_tokens.scope``: ``write`` (everything the user may do) or ``read`` (GET only).
  Existing tokens keep doing what they did: ``write``.
* ``auth_tokens.device`` / ``source_ip``: the browser (User-Agent) and address a login
  session started from, so a person can tell their sessions apart in ``GET /sessions``.

Revision ID: 0021
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("auth_tokens", sa.Column("scope", sa.String(8), nullable=False, server_default="write"))
    op.add_column("auth_tokens", sa.Column("device", sa.String(200), nullable=False, server_default=""))
    op.add_column("auth_tokens", sa.Column("source_ip", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("auth_tokens", "source_ip")
    op.drop_column("auth_tokens", "device")
    op.drop_column("auth_tokens", "scope")
