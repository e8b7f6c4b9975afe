"""deploy: indexes for the hot reads and for retention, a lease table, trimmable manifests.

* ``deploy_records (app, id)`` and ``(app, service, id)``: an app's (a service's) records,
  newest first, one page without sorting the app's whole history;
* ``deploy_log_lines (time)``, ``deploy_ci_builds (created_at)``, ``deploy_processed_events
  (processed_at)``: retention deletes the oldest rows in batches (shared/retention.py);
* ``deploy_targets.manifests`` may be NULL: a superseded target's manifests are trimmed
  after ``RETENTION_DAYS.manifests`` (the record and its targets stay, for audit).

Revision ID: 0028
Revises: 0027 (the deploy branch)
"""
import sqlalchemy as sa
from alembic import op

from migrations.retention import add_leases_and_event_age, drop_leases_and_event_age

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_leases_and_event_age("deploy")
    op.create_index("ix_deploy_records_app_id", "deploy_records", ["app", "id"])
    op.create_index("ix_deploy_records_app_service_id", "deploy_records", ["app", "service", "id"])
    op.create_index("ix_deploy_log_lines_time", "deploy_log_lines", ["time"])
    op.create_index("ix_deploy_ci_builds_created", "deploy_ci_builds", ["created_at"])
    op.alter_column("deploy_targets", "manifests", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE deploy_targets SET manifests = JSON_ARRAY() WHERE manifests IS NULL")
    op.alter_column("deploy_targets", "manifests", existing_type=sa.JSON(), nullable=False)
    op.drop_index("ix_deploy_ci_builds_created", table_name="deploy_ci_builds")
    op.drop_index("ix_deploy_log_lines_time", table_name="deploy_log_lines")
    op.drop_index("ix_deploy_records_app_service_id", table_name="deploy_records")
    op.drop_index("ix_deploy_records_app_id", table_name="deploy_records")
    drop_leases_and_event_age("deploy")
