"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authpipe_server.store.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('projects',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('name', name=op.f('uq_projects_name'))
    )
    op.create_table('vault_meta',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kek_id', sa.String(length=32), nullable=False),
    sa.Column('rotating_to', sa.String(length=32), nullable=True),
    sa.Column('updated_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_vault_meta'))
    )
    op.create_table('connect_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=256), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('allowed_providers', sa.JSON(), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=True),
    sa.Column('origin', sa.String(length=2048), nullable=True),
    sa.Column('return_url', sa.String(length=2048), nullable=True),
    sa.Column('expires_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_connect_sessions_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connect_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_connect_sessions_token_hash'))
    )
    op.create_table('connections',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=256), nullable=False),
    sa.Column('user_id', sa.String(length=256), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('account_id', sa.String(length=512), nullable=True),
    sa.Column('account_name', sa.String(length=512), nullable=True),
    sa.Column('resources', sa.JSON(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('secrets', sa.LargeBinary(), nullable=True),
    sa.Column('expires_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refresh_due_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('check_due_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('refresh_failures', sa.Integer(), nullable=False),
    sa.Column('last_error_code', sa.String(length=64), nullable=True),
    sa.Column('last_error_message', sa.String(length=1024), nullable=True),
    sa.Column('last_error_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_refreshed_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_checked_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_connections_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connections')),
    sa.UniqueConstraint('project_id', 'tenant_id', 'user_id', 'provider', name=op.f('uq_connections_project_id_tenant_id_user_id_provider'))
    )
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.create_index('ix_connections_check_due_at', ['check_due_at'], unique=False)
        batch_op.create_index('ix_connections_refresh_due_at', ['refresh_due_at'], unique=False)

    op.create_table('events',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=True),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_events_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_connection_id'), ['connection_id'], unique=False)
        batch_op.create_index('ix_events_project_id_id', ['project_id', 'id'], unique=False)

    op.create_table('provider_apps',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=512), nullable=True),
    sa.Column('client_secret', sa.LargeBinary(), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('overrides', sa.JSON(), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=True),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_provider_apps_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_apps')),
    sa.UniqueConstraint('project_id', 'provider', name=op.f('uq_provider_apps_project_id_provider'))
    )
    op.create_table('secret_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_secret_keys_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_secret_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_secret_keys_key_hash'))
    )
    with op.batch_alter_table('secret_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_secret_keys_prefix'), ['prefix'], unique=False)

    op.create_table('tenant_keys',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=256), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('shredded_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_tenant_keys_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenant_keys')),
    sa.UniqueConstraint('project_id', 'tenant_id', 'version', name=op.f('uq_tenant_keys_project_id_tenant_id_version'))
    )
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('secret', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_webhook_endpoints_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints')),
    sa.UniqueConstraint('project_id', name=op.f('uq_webhook_endpoints_project_id'))
    )
    op.create_table('oauth_states',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=40), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('issuer', sa.String(length=2048), nullable=True),
    sa.Column('code_verifier', sa.LargeBinary(), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('expires_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('consumed_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['session_id'], ['connect_sessions.id'], name=op.f('fk_oauth_states_session_id_connect_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_states')),
    sa.UniqueConstraint('state_hash', name=op.f('uq_oauth_states_state_hash'))
    )
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_states_session_id'), ['session_id'], unique=False)

    op.create_table('tenant_key_wraps',
    sa.Column('tenant_key_id', sa.String(length=40), nullable=False),
    sa.Column('kek_id', sa.String(length=32), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_key_id'], ['tenant_keys.id'], name=op.f('fk_tenant_key_wraps_tenant_key_id_tenant_keys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_key_id', 'kek_id', name=op.f('pk_tenant_key_wraps'))
    )
    op.create_table('webhook_deliveries',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=40), nullable=False),
    sa.Column('endpoint_id', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=40), nullable=False),
    sa.Column('connection_id', sa.String(length=40), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_status_code', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=1024), nullable=True),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('delivered_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_deliveries_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_webhook_deliveries_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries'))
    )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_deliveries_endpoint_id'), ['endpoint_id'], unique=False)
        batch_op.create_index('ix_webhook_deliveries_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_deliveries_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_webhook_deliveries_endpoint_id'))

    op.drop_table('webhook_deliveries')
    op.drop_table('tenant_key_wraps')
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_states_session_id'))

    op.drop_table('oauth_states')
    op.drop_table('webhook_endpoints')
    op.drop_table('tenant_keys')
    with op.batch_alter_table('secret_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_secret_keys_prefix'))

    op.drop_table('secret_keys')
    op.drop_table('provider_apps')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_project_id_id')
        batch_op.drop_index(batch_op.f('ix_events_connection_id'))

    op.drop_table('events')
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_index('ix_connections_refresh_due_at')
        batch_op.drop_index('ix_connections_check_due_at')

    op.drop_table('connections')
    op.drop_table('connect_sessions')
    op.drop_table('vault_meta')
    op.drop_table('projects')
