"""indexes the admin's figures read by: a campaign's redemptions (its page, GET
/campaigns/{id}/stats), a merchant's redemptions and orders by time (the dashboard)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 12:00:00

"""
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    # what campaign_stats groups, read from the index alone on PostgreSQL
    op.create_index('ix_redemptions_campaign', 'redemptions', ['campaign_id', 'redeemed_at'],
                    postgresql_include=['store_id', 'reversed_at', 'uses'])
    op.create_index('ix_redemptions_merchant_time', 'redemptions', ['merchant_id', 'redeemed_at'],
                    postgresql_include=['reversed_at'])
    op.create_index('ix_orders_merchant_time', 'orders', ['merchant_id', 'created_at'],
                    postgresql_include=['quantity'])


def downgrade():
    op.drop_index('ix_orders_merchant_time', table_name='orders')
    op.drop_index('ix_redemptions_merchant_time', table_name='redemptions')
    op.drop_index('ix_redemptions_campaign', table_name='redemptions')
