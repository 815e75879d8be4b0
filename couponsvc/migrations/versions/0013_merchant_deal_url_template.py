"""merchants.deal_url_template: a merchant's own deal link (its storefront's page of a deal),
over the deployment's COUPONSVC_DEAL_URL_TEMPLATE

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 14:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(sa.Column("deal_url_template", sa.String(500), nullable=True))


def downgrade():
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("deal_url_template")
