"""access version stamp: workers cache checked Vault keys and reload when it moves

Revision ID: 0008_access_stamp
Revises: 0007_ledger
Create Date: 2026-11-27 14:00:00.000000

Adds the `access` row to `billing_versions`. It is bumped in the same transaction as every
change of who may call (a Vault key revoked, rewritten or re-limited; a user deactivated or
deleted), and read with every proxied call's one statement.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_access_stamp'
down_revision = '0007_ledger'
branch_labels = None
depends_on = None

versions = sa.table('billing_versions', sa.column('name', sa.String), sa.column('version', sa.BigInteger))


def upgrade():
    op.execute(versions.insert().values(name='access', version=1))


def downgrade():
    op.execute(versions.delete().where(versions.c.name == 'access'))
