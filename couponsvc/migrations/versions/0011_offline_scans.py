"""offline scans uploaded in batches: a redemption's scan and upload times, the scan time
of a refused attempt, and the outcome of every uploaded scan per device and nonce

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('redemptions') as batch:
        batch.add_column(sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=True))
    # Every redemption so far was scanned online: at the moment it was recorded.
    op.execute("UPDATE redemptions SET scanned_at = redeemed_at")
    with op.batch_alter_table('redemptions') as batch:
        batch.alter_column('scanned_at', existing_type=sa.DateTime(timezone=True), nullable=False)
    with op.batch_alter_table('redemption_attempts') as batch:
        batch.add_column(sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'offline_scans',
        sa.Column('merchant_id', sa.String(length=40), nullable=False),
        sa.Column('device_id', sa.String(length=100), nullable=False),
        sa.Column('nonce', sa.String(length=100), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('redemption_id', sa.String(length=40), nullable=True),
        sa.Column('coupon_code', sa.String(length=16), nullable=True),
        sa.Column('store_id', sa.String(length=40), nullable=True),
        sa.Column('api_key_id', sa.String(length=40), nullable=True),
        sa.Column('scanned_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('merchant_id', 'device_id', 'nonce'),
    )


def downgrade():
    op.drop_table('offline_scans')
    with op.batch_alter_table('redemption_attempts') as batch:
        batch.drop_column('scanned_at')
    with op.batch_alter_table('redemptions') as batch:
        batch.drop_column('uploaded_at')
        batch.drop_column('scanned_at')
