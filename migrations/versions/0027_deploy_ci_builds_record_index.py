"""deploy: an index on ``deploy_ci_builds.record_id`` — a CI deploy's ``deploy.succeeded``
finds its build (and the link's ``auto_route``) by the record id.

Revision ID: 0027
Revises: 0023 (the deploy branch)
"""
from alembic import op

revision = "0027"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deploy_ci_builds_record", "deploy_ci_builds", ["record_id"])


def downgrade() -> None:
    op.drop_index("ix_deploy_ci_builds_record", table_name="deploy_ci_builds")
