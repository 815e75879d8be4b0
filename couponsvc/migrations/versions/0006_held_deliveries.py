"""held deliveries: what enabling a disabled integration releases

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 21:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

HELD = sa.text("status = 'held'")


def upgrade():
    op.create_index('ix_deliveries_held', 'deliveries', ['integration_id', 'id'], unique=False,
                    postgresql_where=HELD, sqlite_where=HELD)


def downgrade():
    op.drop_index('ix_deliveries_held', table_name='deliveries')
