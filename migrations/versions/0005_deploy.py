"""deploy: services, versions, ingresses, templates, deploy records, their targets and log lines

A branch from 0001 of its own; shared.migrate upgrades to every head.

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-25 16:00:00
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql


revision = '0005'
down_revision = '0001'
branch_labels = None
depends_on = None

# Microsecond times: a record's transitions happen within one second.
TIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql')


def upgrade() -> None:
    op.create_table('deploy_ingresses',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('app', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIME, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app', 'name', name='uq_deploy_ingress')
    )
    op.create_table('deploy_log_lines',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('line_id', sa.String(length=80), nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('time', TIME, nullable=False),
    sa.Column('cluster', sa.String(length=63), nullable=False),
    sa.Column('level', sa.String(length=8), nullable=False),
    sa.Column('line', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('line_id')
    )
    op.create_index('ix_deploy_log_lines_record', 'deploy_log_lines', ['record_id', 'id'], unique=False)
    op.create_table('deploy_records',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('app', sa.String(length=63), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('subject', sa.String(length=16), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=True),
    sa.Column('version', sa.String(length=63), nullable=True),
    sa.Column('ingress', sa.String(length=63), nullable=True),
    sa.Column('rollback_of', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIME, nullable=False),
    sa.Column('finished_at', TIME, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_deploy_records_app', 'deploy_records', ['app', 'service', 'version', 'id'], unique=False)
    op.create_table('deploy_services',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('app', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIME, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app', 'name', name='uq_deploy_service')
    )
    op.create_table('deploy_templates',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('app', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIME, nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('app', 'name', name='uq_deploy_template')
    )
    op.create_table('deploy_targets',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('record_id', sa.BigInteger(), nullable=False),
    sa.Column('cluster', sa.String(length=63), nullable=False),
    sa.Column('env', sa.String(length=16), nullable=False),
    sa.Column('namespace', sa.String(length=63), nullable=False),
    sa.Column('object_name', sa.String(length=253), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('has_deployment', sa.Boolean(), nullable=False),
    sa.Column('image', sa.String(length=255), nullable=True),
    sa.Column('manifests', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('requested_at', TIME, nullable=True),
    sa.Column('applied_uid', sa.String(length=64), nullable=True),
    sa.Column('applied_generation', sa.BigInteger(), nullable=True),
    sa.Column('seen_rv', sa.BigInteger(), nullable=True),
    sa.Column('seen_observed_generation', sa.BigInteger(), nullable=True),
    sa.Column('replicas', sa.JSON(), nullable=False),
    sa.Column('progress_deadline_seconds', sa.Integer(), nullable=False),
    sa.Column('last_progress_at', TIME, nullable=True),
    sa.Column('finished_at', TIME, nullable=True),
    sa.Column('updated_at', TIME, nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['deploy_records.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_id', 'cluster', name='uq_deploy_target')
    )
    op.create_index('ix_deploy_targets_object', 'deploy_targets', ['cluster', 'namespace', 'object_name', 'status'], unique=False)
    op.create_index('ix_deploy_targets_status', 'deploy_targets', ['status', 'updated_at'], unique=False)
    op.create_table('deploy_versions',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('service_id', sa.BigInteger(), nullable=False),
    sa.Column('app', sa.String(length=63), nullable=False),
    sa.Column('service', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', TIME, nullable=False),
    sa.Column('updated_at', TIME, nullable=False),
    sa.Column('deleted_at', TIME, nullable=True),
    sa.ForeignKeyConstraint(['service_id'], ['deploy_services.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('service_id', 'name', name='uq_deploy_version')
    )


def downgrade() -> None:
    op.drop_table('deploy_versions')
    op.drop_index('ix_deploy_targets_status', table_name='deploy_targets')
    op.drop_index('ix_deploy_targets_object', table_name='deploy_targets')
    op.drop_table('deploy_targets')
    op.drop_table('deploy_templates')
    op.drop_table('deploy_services')
    op.drop_index('ix_deploy_records_app', table_name='deploy_records')
    op.drop_table('deploy_records')
    op.drop_index('ix_deploy_log_lines_record', table_name='deploy_log_lines')
    op.drop_table('deploy_log_lines')
    op.drop_table('deploy_ingresses')
