"""opaque delivery ids: deliveries.public_id, random, beside the internal order column id;
and the indexes GET /orders finds orders by

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 22:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

# what `couponsvc.models.integration.random_delivery_id` compiles to
RANDOM_ID = {
    "postgresql": "'dlv_' || replace(CAST(gen_random_uuid() AS text), '-', '')",
    "sqlite": "'dlv_' || lower(hex(randomblob(16)))",
}

ORDER_INDEXES = (("ix_orders_merchant", "merchant_id"), ("ix_orders_customer_ref", "customer_ref"),
                 ("ix_orders_payment_ref", "payment_ref"))


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # a volatile default: PostgreSQL fills every existing row with its own value (one
        # rewrite of the table), and processes still running the code of before, which do
        # not name the column, keep inserting deliveries during a rolling deploy
        op.add_column('deliveries', sa.Column('public_id', sa.String(length=40), nullable=False,
                                              server_default=sa.text(f"({RANDOM_ID[dialect]})")))
    else:  # SQLite adds no column with a non-constant default; every insert of this code sets it
        op.add_column('deliveries', sa.Column('public_id', sa.String(length=40), nullable=True))
        op.execute(f"UPDATE deliveries SET public_id = {RANDOM_ID[dialect]} WHERE public_id IS NULL")
    op.create_index('ix_deliveries_public_id', 'deliveries', ['public_id'], unique=True)
    for name, column in ORDER_INDEXES:
        op.create_index(name, 'orders', [column, 'id'], unique=False)


def downgrade():
    for name, _ in ORDER_INDEXES:
        op.drop_index(name, table_name='orders')
    op.drop_index('ix_deliveries_public_id', table_name='deliveries')
    with op.batch_alter_table('deliveries') as batch:
        batch.drop_column('public_id')
