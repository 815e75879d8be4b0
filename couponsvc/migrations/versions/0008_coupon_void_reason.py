"""coupons.void_reason: why a coupon was voided, told to the cashier who scans it

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 22:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("coupons") as batch:
        batch.add_column(sa.Column("void_reason", sa.String(500), nullable=True))


def downgrade():
    with op.batch_alter_table("coupons") as batch:
        batch.drop_column("void_reason")
