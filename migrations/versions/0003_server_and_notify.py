"""server and notify: the server inventory, cloud accounts and expiry reminders; MUMS channels and deliveries

A branch from 0001 of its own (other services add theirs); shared.migrate upgrades to every head.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-25 14:36:04.585126
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('server_cloud_accounts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('access_key_id', sa.String(length=128), nullable=False),
    sa.Column('access_key_secret', sa.Text(), nullable=False),
    sa.Column('regions', sa.JSON(), nullable=False),
    sa.Column('last_sync_status', sa.String(length=16), nullable=False),
    sa.Column('last_sync_error', sa.Text(), nullable=True),
    sa.Column('last_sync_at', sa.DateTime(), nullable=True),
    sa.Column('last_sync_count', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('server_servers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('instance_id', sa.String(length=128), nullable=True),
    sa.Column('cloud_account_id', sa.Integer(), nullable=True),
    sa.Column('cpu', sa.Integer(), nullable=True),
    sa.Column('memory_gb', sa.Float(), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('owner', sa.String(length=128), nullable=True),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('cloud_status', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['cloud_account_id'], ['server_cloud_accounts.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('provider', 'instance_id', name='uq_server_instance')
    )
    op.create_index(op.f('ix_server_servers_expires_at'), 'server_servers', ['expires_at'], unique=False)
    op.create_table('server_expiry_reminders',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('server_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('days_left', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['server_id'], ['server_servers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('server_id', 'day', name='uq_reminder_server_day')
    )
    op.create_table('notify_channels',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('app', sa.String(length=63), nullable=True),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=True),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_notify_channels_app'), 'notify_channels', ['app'], unique=False)
    op.create_table('notify_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('app', sa.String(length=63), nullable=True),
    sa.Column('event_id', sa.String(length=64), nullable=False),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_until', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('delivered_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['channel_id'], ['notify_channels.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('channel_id', 'event_id', name='uq_delivery_channel_event')
    )
    op.create_index('ix_delivery_app_id', 'notify_deliveries', ['app', 'id'], unique=False)
    op.create_index('ix_delivery_status_lease', 'notify_deliveries', ['status', 'lease_until'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_delivery_status_lease', table_name='notify_deliveries')
    op.drop_index('ix_delivery_app_id', table_name='notify_deliveries')
    op.drop_table('notify_deliveries')
    op.drop_index(op.f('ix_notify_channels_app'), table_name='notify_channels')
    op.drop_table('notify_channels')
    op.drop_table('server_expiry_reminders')
    op.drop_index(op.f('ix_server_servers_expires_at'), table_name='server_servers')
    op.drop_table('server_servers')
    op.drop_table('server_cloud_accounts')
