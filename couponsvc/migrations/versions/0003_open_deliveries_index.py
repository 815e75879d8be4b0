"""open deliveries per integration, for the drains' claims and the sweep

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 02:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('pending', 'failed')")


def upgrade():
    op.create_index('ix_deliveries_open', 'deliveries', ['integration_id', 'id'], unique=False,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    op.create_index('ix_deliveries_open_due', 'deliveries', ['integration_id', 'next_attempt_at'],
                    unique=False, postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade():
    op.drop_index('ix_deliveries_open_due', table_name='deliveries')
    op.drop_index('ix_deliveries_open', table_name='deliveries')
