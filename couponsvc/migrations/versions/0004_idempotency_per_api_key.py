"""idempotent answers scoped to the API key that made them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 21:00:00

Records were keyed by the merchant (`owner`); they are keyed by the API key now, and
may hold a snapshot drawn by a named `renderer`. The stored answers are a 24-hour
replay cache whose makers cannot be told from the old rows, so the table is made anew:
a retry that spans the upgrade is a new request (a redeem is then refused as already
redeemed, with the time and store of the first).
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _create(scope: str, renderer: bool):
    columns = [
        sa.Column(scope, sa.String(length=40), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=False),
        sa.Column('headers', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
    ]
    if renderer:
        columns.append(sa.Column('renderer', sa.String(length=40), nullable=True))
    op.create_table('idempotency_keys', *columns,
                    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint(scope, 'key'))
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'], unique=False)


def _drop():
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')


def upgrade():
    _drop()
    _create('api_key_id', renderer=True)


def downgrade():
    _drop()
    _create('owner', renderer=False)
