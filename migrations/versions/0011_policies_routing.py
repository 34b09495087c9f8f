"""policies and routing: per-key and per-user limits, model aliases and settings, per-image prices

Revision ID: 0011_policies_routing
Revises: 0010_upstream_proxy
Create Date: 2026-11-27 21:10:00

Vault keys get their policy columns (expiry, model globs, spend cap and period, tokens per
minute, concurrency, CIDRs) and users the ceilings an admin gives their keys (`limits`).
Open holds say which cap period they count against and how many tokens they may use;
`key_spend` keeps what a capped key settled per period. Usage records say how many images a
call made and which model a fallback stood in for. `model_aliases` and `model_settings`
are the admin's model routing; `model_prices.image_nano` is a per-image price, seeded here for
Google's Imagen models (frozen as listed on 2026-11-27; rows an admin made are left alone).
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


revision = '0011_policies_routing'
down_revision = '0010_upstream_proxy'
branch_labels = None
depends_on = None

# model, USD per image in nano-USD, input/output token limits (Imagen's prompt limit is 480 tokens)
IMAGEN = (("imagen-4.0-generate-001", 40_000_000), ("imagen-4.0-ultra-generate-001", 60_000_000),
          ("imagen-4.0-fast-generate-001", 20_000_000), ("imagen-3.0-generate-002", 30_000_000))


def seed_imagen_prices():
    prices = sa.table('model_prices', sa.column('model', sa.String), sa.column('input_nano', sa.BigInteger),
                      sa.column('output_nano', sa.BigInteger), sa.column('cached_nano', sa.BigInteger),
                      sa.column('image_nano', sa.BigInteger), sa.column('updated_at', sa.DateTime(timezone=True)))
    models = sa.table('gemini_models', sa.column('model', sa.String), sa.column('input_token_limit', sa.Integer),
                      sa.column('output_token_limit', sa.Integer), sa.column('source', sa.String),
                      sa.column('refreshed_at', sa.DateTime(timezone=True)))
    versions = sa.table('billing_versions', sa.column('name', sa.String), sa.column('version', sa.BigInteger))
    bind, now = op.get_bind(), datetime.now(timezone.utc)
    priced = set(bind.execute(sa.select(prices.c.model)).scalars())
    known = set(bind.execute(sa.select(models.c.model)).scalars())
    new_prices = [{"model": model, "input_nano": 0, "output_nano": 0, "cached_nano": 0, "image_nano": image,
                   "updated_at": now} for model, image in IMAGEN if model not in priced]
    if new_prices:
        op.bulk_insert(prices, new_prices)
        op.execute(versions.update().where(versions.c.name == 'prices').values(version=versions.c.version + 1))
    new_models = [{"model": model, "input_token_limit": 480, "output_token_limit": 8192, "source": "catalog",
                   "refreshed_at": now} for model, _ in IMAGEN if model not in known]
    if new_models:
        op.bulk_insert(models, new_models)


def upgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('allowed_models', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('spend_cap_nano', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('spend_cap_period', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('rate_limit_tpm', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('max_concurrency', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('allowed_ips', sa.JSON(), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('limits', sa.JSON(), nullable=True))
    with op.batch_alter_table('pending_holds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cap_period', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('tokens', sa.BigInteger(), server_default=sa.text('0'), nullable=False))
        batch_op.create_index('ix_pending_holds_api_key_id', ['api_key_id'], unique=False)
    with op.batch_alter_table('usage_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_count', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('fallback_from', sa.String(length=128), nullable=True))
        batch_op.create_index('ix_usage_records_key_finished', ['api_key_id', 'finished_at'], unique=False)
    with op.batch_alter_table('model_prices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image_nano', sa.BigInteger(), nullable=True))
    op.create_table(
        'key_spend',
        sa.Column('api_key_id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=16), nullable=False),
        sa.Column('spent_nano', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_key_spend_api_key_id_api_keys'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('api_key_id', 'period', name=op.f('pk_key_spend')),
    )
    op.create_table(
        'model_aliases',
        sa.Column('alias', sa.String(length=128), nullable=False),
        sa.Column('target', sa.String(length=128), nullable=False),
        sa.Column('defaults', sa.JSON(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('alias', name=op.f('pk_model_aliases')),
    )
    op.create_table(
        'model_settings',
        sa.Column('model', sa.String(length=128), nullable=False),
        sa.Column('hidden', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('fallback', sa.JSON(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('model', name=op.f('pk_model_settings')),
    )
    seed_imagen_prices()


def drop_columns(table, *columns):
    """Drop columns in place: SQLite (3.35+) can, and recreating a table (batch mode) would
    cascade the implicit delete of its rows to every table referencing it."""
    for column in columns:
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
        else:
            op.drop_column(table, column)


def downgrade():
    op.drop_table('model_settings')
    op.drop_table('model_aliases')
    op.drop_table('key_spend')
    op.drop_index('ix_usage_records_key_finished', table_name='usage_records')
    op.drop_index('ix_pending_holds_api_key_id', table_name='pending_holds')
    drop_columns('model_prices', 'image_nano')
    drop_columns('usage_records', 'fallback_from', 'image_count')
    drop_columns('pending_holds', 'tokens', 'cap_period')
    drop_columns('users', 'limits')
    drop_columns('api_keys', 'allowed_ips', 'max_concurrency', 'rate_limit_tpm', 'spend_cap_period',
                 'spend_cap_nano', 'allowed_models', 'expires_at')
