"""upstream proxy: an optional egress proxy per upstream key

Revision ID: 0010_upstream_proxy
Revises: 0009_stored_resources
Create Date: 2026-11-27 17:14:51.851735

`upstream_keys.proxy_url_encrypted` is a Fernet token of the HTTP(S) or SOCKS5 proxy URL
that every call with the key goes through (it may carry a password); null means the
default egress (the environment's proxy settings, or direct).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_upstream_proxy'
down_revision = '0009_stored_resources'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('upstream_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('proxy_url_encrypted', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('upstream_keys', schema=None) as batch_op:
        batch_op.drop_column('proxy_url_encrypted')
