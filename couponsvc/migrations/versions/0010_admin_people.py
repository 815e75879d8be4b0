"""people of the admin pages: roles and lock-out on admin_users, server-side sessions,
the audit log

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 23:55:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin_users') as batch:
        batch.add_column(sa.Column('role', sa.String(length=16), nullable=False,
                                   server_default='operator'))
        batch.add_column(sa.Column('merchant_id', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('name', sa.String(length=200), nullable=False, server_default=''))
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('created_by', sa.String(length=40), nullable=True))
        batch.create_foreign_key('fk_admin_users_merchant', 'merchants', ['merchant_id'], ['id'])
        batch.create_index('ix_admin_users_merchant', ['merchant_id'])
    op.create_table(
        'admin_sessions',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('token_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('user_id', sa.String(length=40), sa.ForeignKey('admin_users.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('user_agent', sa.String(length=300), nullable=False),
    )
    op.create_index('ix_admin_sessions_user', 'admin_sessions', ['user_id', 'created_at'])
    op.create_table(
        'audit_log',
        sa.Column('id', sa.String(length=40), primary_key=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_id', sa.String(length=40), nullable=True),
        sa.Column('user_email', sa.String(length=320), nullable=False),
        sa.Column('merchant_id', sa.String(length=40), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('target_type', sa.String(length=32), nullable=False),
        sa.Column('target_id', sa.String(length=64), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
    )
    op.create_index('ix_audit_log_merchant', 'audit_log', ['merchant_id', 'at'])
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])


def downgrade():
    op.drop_index('ix_audit_log_at', table_name='audit_log')
    op.drop_index('ix_audit_log_merchant', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index('ix_admin_sessions_user', table_name='admin_sessions')
    op.drop_table('admin_sessions')
    with op.batch_alter_table('admin_users') as batch:
        batch.drop_index('ix_admin_users_merchant')
        batch.drop_constraint('fk_admin_users_merchant', type_='foreignkey')
        for column in ('created_by', 'disabled_at', 'locked_until', 'failed_logins', 'name',
                       'merchant_id', 'role'):
            batch.drop_column(column)
