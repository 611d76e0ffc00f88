"""Webhook endpoints: secrets sealed (encrypted with a key outside the database)

Revision ID: 2f34990810c5
Revises: 4bb4de04d62b
Create Date: 2026-11-26 16:44:56.903123

"""
from alembic import op
import sqlalchemy as sa

from scheduler.util.sealed import PREFIX, seal, unseal


# revision identifiers, used by Alembic.
revision = '2f34990810c5'
down_revision = '4bb4de04d62b'
branch_labels = None
depends_on = None


def _rewrite(change):
    """Apply ``change`` to every stored secret (with the app's keys: flask db upgrade runs in its context)."""
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, secret, previous_secret FROM webhook_endpoints")).all()
    for id_, secret, previous in rows:
        conn.execute(
            sa.text("UPDATE webhook_endpoints SET secret = :secret, previous_secret = :previous WHERE id = :id"),
            {"id": id_, "secret": change(secret), "previous": change(previous)},
        )


def upgrade():
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.alter_column('secret', existing_type=sa.VARCHAR(length=200), type_=sa.String(length=500),
                              existing_nullable=False)
        batch_op.alter_column('previous_secret', existing_type=sa.VARCHAR(length=100), type_=sa.String(length=500),
                              existing_nullable=True)
    _rewrite(lambda value: seal(value) if value and not value.startswith(PREFIX) else value)


def downgrade():
    _rewrite(lambda value: unseal(value) if value else value)
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.alter_column('previous_secret', existing_type=sa.String(length=500), type_=sa.VARCHAR(length=100),
                              existing_nullable=True)
        batch_op.alter_column('secret', existing_type=sa.String(length=500), type_=sa.VARCHAR(length=200),
                              existing_nullable=False)
