"""Background calendar imports (a URL, or a large file): options, progress and report

Revision ID: d944a147b718
Revises: 2f04a4ee1e75
Create Date: 2026-12-05 16:43:14.194612

"""
from alembic import op
import sqlalchemy as sa

import scheduler.util.types
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import Text

# revision identifiers, used by Alembic.
revision = 'd944a147b718'
down_revision = '2f04a4ee1e75'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('import_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=2000), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=True),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('draft', sa.Boolean(), nullable=False),
    sa.Column('dry_run', sa.Boolean(), nullable=False),
    sa.Column('atomic', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('phase', sa.String(length=16), nullable=True),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('updated', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('report', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', scheduler.util.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', scheduler.util.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', scheduler.util.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', scheduler.util.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_import_jobs_org_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_import_jobs_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_import_jobs'))
    )
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_jobs_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_import_jobs_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_jobs_status'))
        batch_op.drop_index(batch_op.f('ix_import_jobs_org_id'))

    op.drop_table('import_jobs')