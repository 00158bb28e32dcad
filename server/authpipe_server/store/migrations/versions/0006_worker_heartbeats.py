"""worker heartbeats; when a secret key was last used

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import authpipe_server.store.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker_heartbeats',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('started_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('seen_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_worker_heartbeats'))
    )
    with op.batch_alter_table('secret_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_used_at', authpipe_server.store.types.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('secret_keys', schema=None) as batch_op:
        batch_op.drop_column('last_used_at')

    op.drop_table('worker_heartbeats')
