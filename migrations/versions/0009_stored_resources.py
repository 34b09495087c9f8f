"""stored resources: files and cached contents made through the Vault, and resumable uploads

Revision ID: 0009_stored_resources
Revises: 0008_access_stamp
Create Date: 2026-11-27 16:03:09.555126

`stored_resources` records every upstream file and cached content a user made through the
Vault: who owns it and which upstream key (Google project) holds it. `upload_sessions`
keeps each resumable upload the Vault relays, its client credential hashed and the
upstream's upload URL encrypted.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_stored_resources'
down_revision = '0008_access_stamp'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stored_resources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('name', sa.String(length=160), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('upstream_key_id', sa.Integer(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('token_count', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('mime_type', sa.String(length=255), server_default='', nullable=False),
    sa.Column('display_name', sa.String(length=512), server_default='', nullable=False),
    sa.Column('model', sa.String(length=128), server_default='', nullable=False),
    sa.Column('resource', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('storage_charged_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_stored_resources_api_key_id_api_keys'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['upstream_key_id'], ['upstream_keys.id'], name=op.f('fk_stored_resources_upstream_key_id_upstream_keys'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_stored_resources_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stored_resources')),
    sa.UniqueConstraint('upstream_key_id', 'name', name='uq_stored_resources_key_name')
    )
    with op.batch_alter_table('stored_resources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stored_resources_name'), ['name'], unique=False)
        batch_op.create_index('ix_stored_resources_owner', ['user_id', 'kind', 'deleted_at'], unique=False)

    op.create_table('upload_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('upstream_key_id', sa.Integer(), nullable=True),
    sa.Column('upstream_url_encrypted', sa.Text(), nullable=False),
    sa.Column('declared_bytes', sa.BigInteger(), nullable=False),
    sa.Column('received_bytes', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('mime_type', sa.String(length=255), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('busy_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_upload_sessions_api_key_id_api_keys'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['upstream_key_id'], ['upstream_keys.id'], name=op.f('fk_upload_sessions_upstream_key_id_upstream_keys'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_upload_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upload_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_upload_sessions_token_hash'))
    )
    with op.batch_alter_table('upload_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_sessions_user_id'), ['user_id'], unique=False)



def downgrade():
    with op.batch_alter_table('upload_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_sessions_user_id'))

    op.drop_table('upload_sessions')
    with op.batch_alter_table('stored_resources', schema=None) as batch_op:
        batch_op.drop_index('ix_stored_resources_owner')
        batch_op.drop_index(batch_op.f('ix_stored_resources_name'))

    op.drop_table('stored_resources')
