"""ledger integrity: server-made settlement ids, durable pending holds, soft-deleted upstream keys

Revision ID: 0007_ledger
Revises: 0006_prices
Create Date: 2026-11-27 12:00:00.000000

`usage_records.request_id` becomes `settlement_id` (the ledger's key, made by the server)
keeping its values, which are unique; they are also copied to the new `client_request_id`,
the traced X-Request-Id they were until now. `usage_source` says whether the tokens were
reported by the upstream or estimated. `pending_holds` keeps every hold not yet settled.
`upstream_keys.deleted_at` goes with the new `deleted` state (the state column is a plain
VARCHAR(16) without a CHECK constraint, so the new value needs no schema change).

Downgrading releases every open hold back to its balance (the old code has no sweeper to
settle them) and removes the soft-deleted keys for good (usage records keep no reference).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_ledger'
down_revision = '0006_prices'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.alter_column('request_id', new_column_name='settlement_id', existing_type=sa.String(length=32),
                              existing_nullable=False)
        batch_op.drop_constraint('uq_usage_records_request_id', type_='unique')
    # A second pass: SQLite's table copy loses a constraint made in the pass that renames its column.
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_usage_records_settlement_id'), ['settlement_id'])
        batch_op.add_column(sa.Column('client_request_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('usage_source', sa.String(length=16), server_default='reported',
                                      nullable=False))
        batch_op.create_index(batch_op.f('ix_usage_records_client_request_id'), ['client_request_id'], unique=False)
    op.execute("UPDATE usage_records SET client_request_id = settlement_id")

    with op.batch_alter_table('upstream_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))

    op.create_table('pending_holds',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('settlement_id', sa.String(length=32), nullable=False),
    sa.Column('client_request_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=True),
    sa.Column('endpoint', sa.String(length=64), nullable=False),
    sa.Column('model', sa.String(length=128), server_default='', nullable=False),
    sa.Column('amount_nano', sa.BigInteger(), nullable=False),
    sa.Column('estimate_nano', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_pending_holds_api_key_id_api_keys'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pending_holds_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_holds')),
    sa.UniqueConstraint('settlement_id', name=op.f('uq_pending_holds_settlement_id'))
    )
    with op.batch_alter_table('pending_holds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pending_holds_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pending_holds_user_id'), ['user_id'], unique=False)


def downgrade():
    op.execute(
        "UPDATE users SET balance_nano = balance_nano + "
        "(SELECT COALESCE(SUM(amount_nano), 0) FROM pending_holds WHERE pending_holds.user_id = users.id)"
    )
    with op.batch_alter_table('pending_holds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pending_holds_user_id'))
        batch_op.drop_index(batch_op.f('ix_pending_holds_expires_at'))
    op.drop_table('pending_holds')

    op.execute("UPDATE usage_records SET upstream_key_id = NULL WHERE upstream_key_id IN "
               "(SELECT id FROM upstream_keys WHERE state = 'deleted')")
    op.execute("DELETE FROM upstream_keys WHERE state = 'deleted'")
    with op.batch_alter_table('upstream_keys', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')

    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_records_client_request_id'))
        batch_op.drop_column('usage_source')
        batch_op.drop_column('client_request_id')
        batch_op.drop_constraint(batch_op.f('uq_usage_records_settlement_id'), type_='unique')
        batch_op.alter_column('settlement_id', new_column_name='request_id', existing_type=sa.String(length=32),
                              existing_nullable=False)
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_usage_records_request_id'), ['request_id'])
