"""deploy: a version's ``secret_env`` — environment variables whose values are write-only.

``secret_env_sealed`` is the secret box's sealing of the JSON object ``{"NAME": "value"}``,
bound to the version's row id (``deploy-version:<id>:secret_env``); null when the version
never had any. ``secret_env_keys`` are the names in clear (answers list them, templates get
them), never the values. Deleting a version clears both; deleting its app deletes the row.

Revision ID: 0020
Revises: 0017 (the deploy branch; see the report: re-chain after 0019 when both land)
"""
import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deploy_versions", sa.Column("secret_env_sealed", sa.Text(), nullable=True))
    op.add_column("deploy_versions", sa.Column("secret_env_keys", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("deploy_versions", "secret_env_keys")
    op.drop_column("deploy_versions", "secret_env_sealed")
