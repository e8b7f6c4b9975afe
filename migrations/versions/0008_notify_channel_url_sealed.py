"""notify: channel URLs are stored sealed (they carry bot access tokens); the masked form
is kept beside them so listing channels decrypts nothing.

Rows written before this revision keep their plain URL here (sealing needs the secret
key, which this revision does not ask for); migration 0024 seals them.

Revision ID: 0008
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notify_channels", sa.Column("url_masked", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("notify_channels", "url_masked")
