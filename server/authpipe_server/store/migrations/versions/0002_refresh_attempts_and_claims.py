"""refresh attempts and claims

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authpipe_server.store.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refresh_attempts',
    sa.Column('connection_id', sa.String(length=40), nullable=False),
    sa.Column('started_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_refresh_attempts_connection_id_connections'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('connection_id', name=op.f('pk_refresh_attempts'))
    )
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.add_column(sa.Column('refresh_claimed_until', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('connections', schema=None) as batch_op:
        batch_op.drop_column('refresh_claimed_until')

    op.drop_table('refresh_attempts')
