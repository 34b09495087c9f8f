"""admin operations: redemption codes, the audit trail, alerts, background jobs, form tokens

Revision ID: 0012_operations
Revises: 0011_policies_routing
Create Date: 2026-11-27 21:34:36.504193

Redemption codes (stored hashed, claimed once), the append-only audit trail of admin
actions, alert settings and the alerts raised with their webhook delivery state, jobs an
admin starts and polls (checking many pool keys), the form tokens that make a submission
work once, and each user's low-balance alert threshold.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_operations'
down_revision = '0011_policies_routing'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('alert_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_status', sa.Integer(), nullable=True),
    sa.Column('last_error', sa.String(length=255), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('email_state', sa.String(length=16), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_events'))
    )
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alert_events_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_events_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_events_state'), ['state'], unique=False)

    op.create_table('alert_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('webhook_url_encrypted', sa.Text(), nullable=True),
    sa.Column('webhook_secret_encrypted', sa.Text(), nullable=True),
    sa.Column('min_usable_keys', sa.Integer(), nullable=True),
    sa.Column('email_to', sa.String(length=254), nullable=True),
    sa.Column('pool_low_alerted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_settings'))
    )
    op.create_table('audit_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_email', sa.String(length=254), server_default='', nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), server_default='', nullable=False),
    sa.Column('before', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('after', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('ip', sa.String(length=64), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_entries_actor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entries_at'), ['at'], unique=False)

    op.create_table('form_submissions',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_form_submissions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_form_submissions'))
    )
    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_form_submissions_created_at'), ['created_at'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('done', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total', sa.Integer(), server_default='0', nullable=False),
    sa.Column('params', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('results', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('error', sa.String(length=255), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active_kind', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_jobs_created_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('active_kind', name=op.f('uq_jobs_active_kind'))
    )
    op.create_table('redemption_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('amount_nano', sa.BigInteger(), nullable=False),
    sa.Column('note', sa.String(length=255), server_default='', nullable=False),
    sa.Column('batch', sa.String(length=32), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('redeemed_by', sa.Integer(), nullable=True),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_redemption_codes_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['redeemed_by'], ['users.id'], name=op.f('fk_redemption_codes_redeemed_by_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemption_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_redemption_codes_code_hash'))
    )
    with op.batch_alter_table('redemption_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_redemption_codes_batch'), ['batch'], unique=False)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('low_balance_threshold_nano', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('low_balance_alerted_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    # In place: recreating `users` (batch mode) on SQLite would cascade its implicit delete.
    for column in ('low_balance_alerted_at', 'low_balance_threshold_nano'):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f'ALTER TABLE users DROP COLUMN {column}')
        else:
            op.drop_column('users', column)

    with op.batch_alter_table('redemption_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_redemption_codes_batch'))

    op.drop_table('redemption_codes')
    op.drop_table('jobs')
    with op.batch_alter_table('form_submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_form_submissions_created_at'))

    op.drop_table('form_submissions')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_actor_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entries_action'))

    op.drop_table('audit_entries')
    op.drop_table('alert_settings')
    with op.batch_alter_table('alert_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alert_events_state'))
        batch_op.drop_index(batch_op.f('ix_alert_events_kind'))
        batch_op.drop_index(batch_op.f('ix_alert_events_created_at'))

    op.drop_table('alert_events')
