"""connect sessions complete once; flows bound to their browser

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authpipe_server.store.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('connect_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('account_change', sa.String(length=16), server_default='allow', nullable=False))
        batch_op.add_column(sa.Column('completed_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('browser_hash', sa.String(length=64), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_column('browser_hash')

    with op.batch_alter_table('connect_sessions', schema=None) as batch_op:
        batch_op.drop_column('completed_at')
        batch_op.drop_column('account_change')
