"""dashboard operators, their sessions, the audit log

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authpipe_server.store.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=512), nullable=True),
    sa.Column('project_id', sa.String(length=40), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('address_key', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_action_address_key_created_at', ['action', 'address_key', 'created_at'], unique=False)
        batch_op.create_index('ix_audit_log_action_email_created_at', ['action', 'email', 'created_at'], unique=False)
        batch_op.create_index('ix_audit_log_email_id', ['email', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_project_id_id', ['project_id', 'id'], unique=False)

    op.create_table('operators',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('project_ids', sa.JSON(), nullable=True),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('email', name=op.f('uq_operators_email'))
    )
    op.create_table('operator_sessions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('operator_id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_operator_sessions_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_operator_sessions_token_hash'))
    )
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operator_sessions_operator_id'), ['operator_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operator_sessions_operator_id'))

    op.drop_table('operator_sessions')
    op.drop_table('operators')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_project_id_id')
        batch_op.drop_index('ix_audit_log_email_id')
        batch_op.drop_index('ix_audit_log_action_email_created_at')
        batch_op.drop_index('ix_audit_log_action_address_key_created_at')

    op.drop_table('audit_log')
