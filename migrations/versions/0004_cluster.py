"""cluster: registered clusters, namespaces per cluster, latest operator reports

A branch from 0001 of its own; shared.migrate upgrades to every head.

Revision ID: 0004
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('cluster_clusters',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('env', sa.String(length=8), nullable=False),
    sa.Column('server', sa.String(length=512), nullable=False),
    sa.Column('ca_cert', sa.Text(), nullable=False),
    sa.Column('token_sealed', sa.Text(), nullable=False),
    sa.Column('report_token_hash', sa.String(length=64), nullable=False),
    sa.Column('reachable', sa.Boolean(), nullable=False),
    sa.Column('probe_error', sa.Text(), nullable=True),
    sa.Column('probed_at', sa.DateTime(), nullable=True),
    sa.Column('last_report_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('report_token_hash')
    )
    op.create_table('cluster_namespaces',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('cluster', sa.String(length=63), nullable=False),
    sa.Column('namespace', sa.String(length=63), nullable=False),
    sa.Column('desired', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('cluster', 'namespace', name='uq_cluster_namespace')
    )
    op.create_index('ix_cluster_namespaces_state', 'cluster_namespaces', ['state'], unique=False)
    op.create_table('cluster_reports',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('cluster', sa.String(length=63), nullable=False),
    sa.Column('namespace', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('uid', sa.String(length=64), nullable=False),
    sa.Column('resource_version', sa.BigInteger(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('cluster', 'namespace', 'kind', 'name', name='uq_cluster_report_object')
    )
    op.create_index('ix_cluster_reports_published', 'cluster_reports', ['published'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_cluster_reports_published', table_name='cluster_reports')
    op.drop_table('cluster_reports')
    op.drop_index('ix_cluster_namespaces_state', table_name='cluster_namespaces')
    op.drop_table('cluster_namespaces')
    op.drop_table('cluster_clusters')
