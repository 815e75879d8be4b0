"""lookup_blocks: look-up budgets used up, for the redeem's statement to read

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 04:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "lookup_blocks",
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    op.drop_table("lookup_blocks")
