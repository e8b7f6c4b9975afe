"""deploy: ``auto_route`` on CI links — after an automatic deploy of a CI build succeeds,
route the service's traffic to the new version on the clusters it succeeded on.

Revision ID: 0022
Revises: 0020 (the deploy branch)
"""
import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deploy_ci_links", sa.Column("auto_route", sa.Boolean(), nullable=False,
                                               server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("deploy_ci_links", "auto_route")
