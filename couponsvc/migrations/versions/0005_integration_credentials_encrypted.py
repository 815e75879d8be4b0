"""integration credentials encrypted at rest: integrations.credentials

The credential fields of a config move to `credentials`, encrypted under the data
keys. A migration cannot know those keys, so it only adds the column; rows written by
older versions keep their credentials in `config` until `couponsvc rotate-data-keys`
encrypts them (docs/security.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 21:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('integrations') as batch:
        batch.add_column(sa.Column('credentials', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('integrations') as batch:
        batch.drop_column('credentials')
