"""Imported moved occurrences (RECURRENCE-ID) kept as one-off events linked to their series

Revision ID: 2f04a4ee1e75
Revises: fb10d652930b
Create Date: 2026-12-05 16:41:48.413365

"""
from alembic import op
import sqlalchemy as sa

import scheduler.util.types


# revision identifiers, used by Alembic.
revision = '2f04a4ee1e75'
down_revision = 'fb10d652930b'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('series_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('recurrence_id', scheduler.util.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_events_series_id'), ['series_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_events_series_id_events'), 'events', ['series_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_events_series_id_events'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_events_series_id'))
        batch_op.drop_column('recurrence_id')
        batch_op.drop_column('series_id')
