"""bulk jobs claimed under a lease: jobs.claims and jobs.lease_until

A run of a bulk job claims it (`claims` + 1, `lease_until` ahead) and renews the lease
with every chunk it writes; the bulk sweep finds a job queued but never run (its
enqueue lost with Redis) or one whose lease ran out (its worker died), and queues it
again under a new RQ job id (`bulk-<job>-<claims>`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 21:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('claims', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('lease_until')
        batch.drop_column('claims')
