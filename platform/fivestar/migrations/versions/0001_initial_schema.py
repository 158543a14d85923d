"""Initial schema (generated from the models by fivestar.dbcli.regenerate_initial).

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('demo_clock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offset_seconds', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_demo_clock_single_row')),
    sa.CheckConstraint('offset_seconds >= 0', name=op.f('ck_demo_clock_ahead')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_demo_clock'))
    )
    op.create_table('operators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=60), nullable=False),
    sa.Column('display_name', sa.String(length=60), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('username', name=op.f('uq_operators_username'))
    )
    op.create_table('tenants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=False),
    sa.Column('status', sa.Enum('active', 'suspended', name='tenant_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('status_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("locale IN ('zh', 'en')", name=op.f('ck_tenants_locale')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('slug', name=op.f('uq_tenants_slug'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_kind', sa.String(length=16), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=120), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_audit_events_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_object', ['tenant_id', 'object_type', 'object_id'], unique=False)
        batch_op.create_index('ix_audit_events_tenant_time', ['tenant_id', 'occurred_at'], unique=False)
    op.create_table('due_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('open_member_round', 'open_branch_round', 'reminder', name='due_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('pending', 'running', 'done', 'failed', name='due_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_due_items_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_due_items')),
    sa.UniqueConstraint('tenant_id', 'kind', 'key', name=op.f('uq_due_items_tenant_id_kind_key'))
    )
    with op.batch_alter_table('due_items', schema=None) as batch_op:
        batch_op.create_index('ix_due_items_due', ['state', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_due_items_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('export_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('report_kind', sa.Enum('member_results', 'five_star', 'notice_lists', 'branch_levels', name='report_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('report_format', sa.Enum('xlsx', 'pdf', name='report_format', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('method', sa.Enum('email', 'https', 'sftp', name='export_method', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('destination', sa.String(length=500), nullable=False),
    sa.Column('remote_dir', sa.String(length=300), nullable=True),
    sa.Column('username', sa.String(length=100), nullable=True),
    sa.Column('host_key', sa.Text(), nullable=True),
    sa.Column('secret_encrypted', sa.Text(), nullable=True),
    sa.Column('private_key_encrypted', sa.Text(), nullable=True),
    sa.Column('trigger', sa.Enum('on_finalise', 'on_date', name='export_trigger', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('on_month', sa.Integer(), nullable=True),
    sa.Column('on_day', sa.Integer(), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('on_day IS NULL OR on_day BETWEEN 1 AND 31', name=op.f('ck_export_targets_on_day')),
    sa.CheckConstraint('on_month IS NULL OR on_month BETWEEN 1 AND 12', name=op.f('ck_export_targets_on_month')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_export_targets_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_targets')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_export_targets_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_export_targets_tenant_id_name'))
    )
    with op.batch_alter_table('export_targets', schema=None) as batch_op:
        batch_op.create_index('ix_export_targets_due', ['trigger', 'active', 'next_run_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_export_targets_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('organisations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.Enum('committee', 'party_committee', 'general_branch', 'branch', 'retiree_branch', name='org_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('path', sa.String(length=400), nullable=False),
    sa.Column('sort_order', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'parent_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_organisations_tenant_id_parent_id_organisations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_organisations_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organisations')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_organisations_tenant_id_code')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_organisations_tenant_id_id'))
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_organisations_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_organisations_tenant_parent', ['tenant_id', 'parent_id'], unique=False)
        batch_op.create_index('ix_organisations_tenant_path', ['tenant_id', 'path'], unique=False)
    op.create_table('outbox_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.Enum('email', 'inapp', 'webhook', name='outbox_channel', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('webhook_id', sa.Integer(), nullable=True),
    sa.Column('link', sa.String(length=300), nullable=True),
    sa.Column('state', sa.Enum('pending', 'sending', 'sent', 'failed', name='delivery_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_outbox_messages_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
    sa.UniqueConstraint('tenant_id', 'dedupe_key', name=op.f('uq_outbox_messages_tenant_id_dedupe_key'))
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('rule_set_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('source_toml', sa.Text(), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rule_set_versions_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_set_versions')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_rule_set_versions_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'version', name=op.f('uq_rule_set_versions_tenant_id_version'))
    )
    with op.batch_alter_table('rule_set_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rule_set_versions_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('branch_rounds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('rules_version_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('open', 'finalised', name='branch_round_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=120), nullable=False),
    sa.Column('self_report_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('committee_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decision_meeting_date', sa.Date(), nullable=True),
    sa.Column('decision_participants', sa.Text(), nullable=True),
    sa.Column('finalised_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'rules_version_id'], ['rule_set_versions.tenant_id', 'rule_set_versions.id'], name=op.f('fk_branch_rounds_tenant_id_rules_version_id_rule_set_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_branch_rounds_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branch_rounds')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_branch_rounds_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'year', name=op.f('uq_branch_rounds_tenant_id_year'))
    )
    with op.batch_alter_table('branch_rounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_branch_rounds_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('export_deliveries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.Enum('on_finalise', 'on_date', name='export_trigger', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('round_type', sa.String(length=8), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('round_key', sa.String(length=16), nullable=False),
    sa.Column('report_job_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.Enum('waiting', 'pending', 'sending', 'sent', 'failed', name='export_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('resends', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_to', sa.String(length=600), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("round_type IN ('member', 'branch')", name=op.f('ck_export_deliveries_round_type')),
    sa.ForeignKeyConstraint(['tenant_id', 'target_id'], ['export_targets.tenant_id', 'export_targets.id'], name=op.f('fk_export_deliveries_tenant_id_target_id_export_targets'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_export_deliveries_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_deliveries')),
    sa.UniqueConstraint('tenant_id', 'target_id', 'round_type', 'round_id', name=op.f('uq_export_deliveries_tenant_id_target_id_round_type_round_id'))
    )
    with op.batch_alter_table('export_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_export_deliveries_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_export_deliveries_log', ['tenant_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_export_deliveries_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('member_rounds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('period_key', sa.String(length=16), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('rules_version_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('open', 'closed', name='round_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_by', sa.String(length=120), nullable=False),
    sa.Column('self_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('joint_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('review_due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('report_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'rules_version_id'], ['rule_set_versions.tenant_id', 'rule_set_versions.id'], name=op.f('fk_member_rounds_tenant_id_rules_version_id_rule_set_versions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_member_rounds_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_rounds')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_member_rounds_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'period_key', name=op.f('uq_member_rounds_tenant_id_period_key'))
    )
    with op.batch_alter_table('member_rounds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_rounds_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('members',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('member_no', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('gender', sa.Enum('male', 'female', name='gender', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('joined_on', sa.Date(), nullable=True),
    sa.Column('standing', sa.Enum('probationary', 'full', name='standing', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('position', sa.Enum('secretary', 'deputy_secretary', 'committee_member', 'member', name='position', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('status', sa.Enum('active', 'transferred_out', name='member_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'branch_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_members_tenant_id_branch_id_organisations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_members_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_members_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'member_no', name=op.f('uq_members_tenant_id_member_no'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index('ix_members_tenant_branch_status', ['tenant_id', 'branch_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_members_tenant_name', ['tenant_id', 'name'], unique=False)
    op.create_table('quarterly_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('quarter', sa.Integer(), nullable=False),
    sa.Column('checks', sa.JSON(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_by', sa.String(length=120), nullable=True),
    sa.Column('committee_comment', sa.Text(), nullable=True),
    sa.Column('commented_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('commented_by', sa.String(length=120), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('quarter >= 1 AND quarter <= 4', name=op.f('ck_quarterly_reviews_quarter')),
    sa.ForeignKeyConstraint(['tenant_id', 'branch_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_quarterly_reviews_tenant_id_branch_id_organisations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_quarterly_reviews_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarterly_reviews')),
    sa.UniqueConstraint('branch_id', 'year', 'quarter', name=op.f('uq_quarterly_reviews_branch_id_year_quarter'))
    )
    with op.batch_alter_table('quarterly_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarterly_reviews_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.Enum('wecom', 'dingtalk', name='webhook_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('url_encrypted', sa.Text(), nullable=False),
    sa.Column('secret_encrypted', sa.Text(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'organisation_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_webhooks_tenant_id_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_webhooks_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_webhooks_tenant_id_id'))
    )
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhooks_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_webhooks_tenant_organisation', ['tenant_id', 'organisation_id'], unique=False)
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=60), nullable=False),
    sa.Column('display_name', sa.String(length=60), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('member_id', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'member_id'], ['members.tenant_id', 'members.id'], name=op.f('fk_accounts_tenant_id_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_accounts_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_accounts_tenant_id_id')),
    sa.UniqueConstraint('tenant_id', 'username', name=op.f('uq_accounts_tenant_id_username'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('uq_accounts_tenant_member', ['tenant_id', 'member_id'], unique=True)
    op.create_table('branch_ratings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Enum('recommend', 'deliberate', 'org_review', 'committee', 'decided', name='rating_step', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('previous_level', sa.Integer(), nullable=True),
    sa.Column('is_new', sa.Boolean(), nullable=False),
    sa.Column('public_rate', sa.Integer(), nullable=True),
    sa.Column('statement', sa.Text(), nullable=True),
    sa.Column('proposed_total', sa.Integer(), nullable=True),
    sa.Column('proposed_level', sa.Integer(), nullable=True),
    sa.Column('recommended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opinion_level', sa.Integer(), nullable=True),
    sa.Column('opinion_statement', sa.Text(), nullable=True),
    sa.Column('opinion_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_comment', sa.Text(), nullable=True),
    sa.Column('forwarded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('forwarded_by', sa.String(length=120), nullable=True),
    sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('return_reason', sa.Text(), nullable=True),
    sa.Column('decided_level', sa.Integer(), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=120), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('decided_level IS NULL OR (decided_level >= 0 AND decided_level <= 5)', name=op.f('ck_branch_ratings_decided')),
    sa.CheckConstraint('opinion_level IS NULL OR (opinion_level >= 0 AND opinion_level <= 5)', name=op.f('ck_branch_ratings_opinion')),
    sa.ForeignKeyConstraint(['tenant_id', 'branch_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_branch_ratings_tenant_id_branch_id_organisations')),
    sa.ForeignKeyConstraint(['tenant_id', 'round_id'], ['branch_rounds.tenant_id', 'branch_rounds.id'], name=op.f('fk_branch_ratings_tenant_id_round_id_branch_rounds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_branch_ratings_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_branch_ratings')),
    sa.UniqueConstraint('round_id', 'branch_id', name=op.f('uq_branch_ratings_round_id_branch_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_branch_ratings_tenant_id_id'))
    )
    with op.batch_alter_table('branch_ratings', schema=None) as batch_op:
        batch_op.create_index('ix_branch_ratings_branch', ['tenant_id', 'branch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_branch_ratings_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('round_branches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Enum('self', 'joint', 'review', 'notice', 'finalised', name='branch_step', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('meeting_date', sa.Date(), nullable=True),
    sa.Column('members_present', sa.Integer(), nullable=True),
    sa.Column('public_present', sa.Integer(), nullable=True),
    sa.Column('meeting_note', sa.Text(), nullable=True),
    sa.Column('notice_token', sa.String(length=64), nullable=True),
    sa.Column('notice_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notice_ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finalised_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('returned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('return_reason', sa.Text(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'branch_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_round_branches_tenant_id_branch_id_organisations')),
    sa.ForeignKeyConstraint(['tenant_id', 'round_id'], ['member_rounds.tenant_id', 'member_rounds.id'], name=op.f('fk_round_branches_tenant_id_round_id_member_rounds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_round_branches_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_round_branches')),
    sa.UniqueConstraint('notice_token', name=op.f('uq_round_branches_notice_token')),
    sa.UniqueConstraint('round_id', 'branch_id', name=op.f('uq_round_branches_round_id_branch_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_round_branches_tenant_id_id'))
    )
    with op.batch_alter_table('round_branches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_round_branches_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('auth_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('operator_id', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ip_address', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=300), nullable=True),
    sa.CheckConstraint('(operator_id IS NOT NULL AND account_id IS NULL AND tenant_id IS NULL) OR (operator_id IS NULL AND account_id IS NOT NULL AND tenant_id IS NOT NULL)', name=op.f('ck_auth_sessions_principal')),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_auth_sessions_operator_id_operators'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'account_id'], ['accounts.tenant_id', 'accounts.id'], name=op.f('fk_auth_sessions_tenant_id_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_auth_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_auth_sessions_token_hash'))
    )
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.create_index('ix_auth_sessions_account', ['tenant_id', 'account_id'], unique=False)
    op.create_table('ballot_meetings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('meeting_date', sa.Date(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=False),
    sa.Column('members_count', sa.Integer(), nullable=False),
    sa.Column('public_count', sa.Integer(), nullable=False),
    sa.Column('deputies_count', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('setup', 'voting', 'closed', name='meeting_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('slips_issued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('voting_closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('members_count >= 0 AND public_count >= 0 AND deputies_count >= 0', name=op.f('ck_ballot_meetings_counts')),
    sa.ForeignKeyConstraint(['tenant_id', 'rating_id'], ['branch_ratings.tenant_id', 'branch_ratings.id'], name=op.f('fk_ballot_meetings_tenant_id_rating_id_branch_ratings')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ballot_meetings_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballot_meetings')),
    sa.UniqueConstraint('rating_id', name=op.f('uq_ballot_meetings_rating_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_ballot_meetings_tenant_id_id'))
    )
    with op.batch_alter_table('ballot_meetings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ballot_meetings_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('criterion_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('indicator_key', sa.String(length=60), nullable=False),
    sa.Column('criterion_key', sa.String(length=60), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'rating_id'], ['branch_ratings.tenant_id', 'branch_ratings.id'], name=op.f('fk_criterion_scores_tenant_id_rating_id_branch_ratings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_criterion_scores_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_criterion_scores')),
    sa.UniqueConstraint('rating_id', 'indicator_key', 'criterion_key', name=op.f('uq_criterion_scores_rating_id_indicator_key_criterion_key'))
    )
    with op.batch_alter_table('criterion_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_criterion_scores_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('evidence_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('indicator_key', sa.String(length=60), nullable=False),
    sa.Column('criterion_key', sa.String(length=60), nullable=False),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=60), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=120), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('uploaded_by', sa.String(length=120), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'rating_id'], ['branch_ratings.tenant_id', 'branch_ratings.id'], name=op.f('fk_evidence_files_tenant_id_rating_id_branch_ratings')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_evidence_files_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evidence_files')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_evidence_files_storage_key'))
    )
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_files_rating', ['rating_id', 'indicator_key', 'criterion_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_evidence_files_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('invitations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'account_id'], ['accounts.tenant_id', 'accounts.id'], name=op.f('fk_invitations_tenant_id_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_invitations_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('member_evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('round_branch_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.Integer(), nullable=False),
    sa.Column('branch_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('active', 'withdrawn', name='evaluation_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('joined_during_round', sa.Boolean(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_reason', sa.Text(), nullable=True),
    sa.Column('self_state', sa.Enum('pending', 'draft', 'submitted', 'returned', name='self_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('pledge', sa.Text(), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('self_submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('entered_by', sa.String(length=120), nullable=True),
    sa.Column('return_reason', sa.Text(), nullable=True),
    sa.Column('strengths', sa.Text(), nullable=True),
    sa.Column('weaknesses', sa.Text(), nullable=True),
    sa.Column('bonus_reason', sa.Text(), nullable=True),
    sa.Column('bonus_basis', sa.Text(), nullable=True),
    sa.Column('disqualifier', sa.String(length=60), nullable=True),
    sa.Column('disqualifier_note', sa.Text(), nullable=True),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('level', sa.Integer(), nullable=True),
    sa.Column('rated', sa.Boolean(), nullable=True),
    sa.Column('scored_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('level IS NULL OR (level >= 0 AND level <= 5)', name=op.f('ck_member_evaluations_level')),
    sa.ForeignKeyConstraint(['tenant_id', 'branch_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_member_evaluations_tenant_id_branch_id_organisations')),
    sa.ForeignKeyConstraint(['tenant_id', 'member_id'], ['members.tenant_id', 'members.id'], name=op.f('fk_member_evaluations_tenant_id_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id', 'round_branch_id'], ['round_branches.tenant_id', 'round_branches.id'], name=op.f('fk_member_evaluations_tenant_id_round_branch_id_round_branches')),
    sa.ForeignKeyConstraint(['tenant_id', 'round_id'], ['member_rounds.tenant_id', 'member_rounds.id'], name=op.f('fk_member_evaluations_tenant_id_round_id_member_rounds')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_member_evaluations_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_member_evaluations')),
    sa.UniqueConstraint('round_id', 'member_id', name=op.f('uq_member_evaluations_round_id_member_id')),
    sa.UniqueConstraint('tenant_id', 'id', name=op.f('uq_member_evaluations_tenant_id_id')),
    postgresql_with={'fillfactor': 50}
    )
    with op.batch_alter_table('member_evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_member_evaluations_member', ['tenant_id', 'member_id'], unique=False)
        batch_op.create_index('ix_member_evaluations_round_branch', ['round_id', 'branch_id', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_member_evaluations_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('outbox_message_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('link', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'account_id'], ['accounts.tenant_id', 'accounts.id'], name=op.f('fk_notices_tenant_id_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_notices_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notices')),
    sa.UniqueConstraint('tenant_id', 'outbox_message_id', name=op.f('uq_notices_tenant_id_outbox_message_id'))
    )
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.create_index('ix_notices_inbox', ['tenant_id', 'account_id', 'read_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notices_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('rating_answers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rating_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('veto', 'fact', name='answer_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('key', sa.String(length=60), nullable=False),
    sa.Column('value', sa.Boolean(), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'rating_id'], ['branch_ratings.tenant_id', 'branch_ratings.id'], name=op.f('fk_rating_answers_tenant_id_rating_id_branch_ratings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rating_answers_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rating_answers')),
    sa.UniqueConstraint('rating_id', 'kind', 'key', name=op.f('uq_rating_answers_rating_id_kind_key'))
    )
    with op.batch_alter_table('rating_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rating_answers_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('report_jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('member_results', 'five_star', 'notice_lists', 'branch_levels', name='report_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('format', sa.Enum('xlsx', 'pdf', name='report_format', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('state', sa.Enum('queued', 'running', 'done', 'failed', 'expired', name='report_job_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('requested_by', sa.String(length=120), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('file_key', sa.String(length=64), nullable=True),
    sa.Column('file_size', sa.Integer(), nullable=True),
    sa.Column('filename', sa.String(length=200), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('progress >= 0 AND progress <= 100', name=op.f('ck_report_jobs_progress')),
    sa.ForeignKeyConstraint(['tenant_id', 'requested_by_id'], ['accounts.tenant_id', 'accounts.id'], name=op.f('fk_report_jobs_tenant_id_requested_by_id_accounts')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_report_jobs_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_jobs'))
    )
    with op.batch_alter_table('report_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_report_jobs_expiry', ['state', 'expires_at'], unique=False)
        batch_op.create_index('ix_report_jobs_list', ['tenant_id', 'requested_at'], unique=False)
        batch_op.create_index('ix_report_jobs_sweep', ['state', 'heartbeat_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_report_jobs_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('role_grants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.Enum('tenant_admin', 'committee_member', 'org_staff', 'branch_secretary', 'branch_committee', 'member', 'inspector', name='role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("(role IN ('org_staff', 'branch_secretary', 'branch_committee')) = (organisation_id IS NOT NULL)", name=op.f('ck_role_grants_scope')),
    sa.ForeignKeyConstraint(['tenant_id', 'account_id'], ['accounts.tenant_id', 'accounts.id'], name=op.f('fk_role_grants_tenant_id_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id', 'organisation_id'], ['organisations.tenant_id', 'organisations.id'], name=op.f('fk_role_grants_tenant_id_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_role_grants_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grants')),
    sa.UniqueConstraint('account_id', 'role', 'organisation_id', name=op.f('uq_role_grants_account_id_role_organisation_id'))
    )
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_role_grants_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('ballot_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('group', sa.Enum('members', 'public', 'deputies', name='voter_group', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used', sa.Boolean(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'meeting_id'], ['ballot_meetings.tenant_id', 'ballot_meetings.id'], name=op.f('fk_ballot_codes_tenant_id_meeting_id_ballot_meetings')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ballot_codes_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballot_codes')),
    sa.UniqueConstraint('code_hash', name=op.f('uq_ballot_codes_code_hash'))
    )
    with op.batch_alter_table('ballot_codes', schema=None) as batch_op:
        batch_op.create_index('ix_ballot_codes_meeting', ['meeting_id', 'group', 'used'], unique=False)
        batch_op.create_index(batch_op.f('ix_ballot_codes_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('ballots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('group', sa.Enum('members', 'public', 'deputies', name='voter_group', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('level', sa.Integer(), nullable=True),
    sa.Column('ratings', sa.JSON(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('level IS NULL OR (level >= 0 AND level <= 5)', name=op.f('ck_ballots_level')),
    sa.ForeignKeyConstraint(['tenant_id', 'meeting_id'], ['ballot_meetings.tenant_id', 'ballot_meetings.id'], name=op.f('fk_ballots_tenant_id_meeting_id_ballot_meetings')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ballots_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ballots'))
    )
    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.create_index('ix_ballots_meeting', ['meeting_id', 'group'], unique=False)
        batch_op.create_index(batch_op.f('ix_ballots_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('evaluation_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.Enum('self', 'joint', 'final', name='score_stage', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('kind', sa.Enum('aspect', 'addition', 'deduction', 'bonus', name='part_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('part_key', sa.String(length=60), nullable=False),
    sa.Column('criterion_key', sa.String(length=60), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'evaluation_id'], ['member_evaluations.tenant_id', 'member_evaluations.id'], name=op.f('fk_evaluation_scores_tenant_id_evaluation_id_member_evaluations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_evaluation_scores_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_scores')),
    sa.UniqueConstraint('evaluation_id', 'stage', 'kind', 'part_key', 'criterion_key', name=op.f('uq_evaluation_scores_evaluation_id_stage_kind_part_key_criterion_key'))
    )
    with op.batch_alter_table('evaluation_scores', schema=None) as batch_op:
        batch_op.create_index('ix_evaluation_scores_stage', ['evaluation_id', 'stage'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluation_scores_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('mentorships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('mentor_member_id', sa.Integer(), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_by', sa.String(length=120), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'evaluation_id'], ['member_evaluations.tenant_id', 'member_evaluations.id'], name=op.f('fk_mentorships_tenant_id_evaluation_id_member_evaluations')),
    sa.ForeignKeyConstraint(['tenant_id', 'mentor_member_id'], ['members.tenant_id', 'members.id'], name=op.f('fk_mentorships_tenant_id_mentor_member_id_members')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_mentorships_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mentorships')),
    sa.UniqueConstraint('evaluation_id', 'mentor_member_id', name=op.f('uq_mentorships_evaluation_id_mentor_member_id'))
    )
    with op.batch_alter_table('mentorships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mentorships_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('notice_objections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_branch_id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('filer_name', sa.String(length=60), nullable=True),
    sa.Column('filer_contact', sa.String(length=120), nullable=True),
    sa.Column('filed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.Enum('open', 'upheld', 'dismissed', name='objection_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.String(length=120), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'evaluation_id'], ['member_evaluations.tenant_id', 'member_evaluations.id'], name=op.f('fk_notice_objections_tenant_id_evaluation_id_member_evaluations')),
    sa.ForeignKeyConstraint(['tenant_id', 'round_branch_id'], ['round_branches.tenant_id', 'round_branches.id'], name=op.f('fk_notice_objections_tenant_id_round_branch_id_round_branches')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_notice_objections_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notice_objections'))
    )
    with op.batch_alter_table('notice_objections', schema=None) as batch_op:
        batch_op.create_index('ix_notice_objections_branch', ['round_branch_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_notice_objections_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('paper_tallies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('group', sa.Enum('members', 'public', 'deputies', name='voter_group', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('indicator_key', sa.String(length=60), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('count >= 0', name=op.f('ck_paper_tallies_count')),
    sa.ForeignKeyConstraint(['tenant_id', 'meeting_id'], ['ballot_meetings.tenant_id', 'ballot_meetings.id'], name=op.f('fk_paper_tallies_tenant_id_meeting_id_ballot_meetings')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_paper_tallies_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_paper_tallies')),
    sa.UniqueConstraint('meeting_id', 'group', 'indicator_key', 'value', name=op.f('uq_paper_tallies_meeting_id_group_indicator_key_value'))
    )
    with op.batch_alter_table('paper_tallies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_paper_tallies_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('rectifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('requirement', sa.Text(), nullable=True),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('set_by', sa.String(length=120), nullable=False),
    sa.Column('completed_on', sa.Date(), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'evaluation_id'], ['member_evaluations.tenant_id', 'member_evaluations.id'], name=op.f('fk_rectifications_tenant_id_evaluation_id_member_evaluations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_rectifications_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rectifications')),
    sa.UniqueConstraint('evaluation_id', name=op.f('uq_rectifications_evaluation_id'))
    )
    with op.batch_alter_table('rectifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rectifications_tenant_id'), ['tenant_id'], unique=False)
    op.create_table('talk_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evaluation_id', sa.Integer(), nullable=False),
    sa.Column('talk_date', sa.Date(), nullable=False),
    sa.Column('talked_by', sa.String(length=120), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=120), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'evaluation_id'], ['member_evaluations.tenant_id', 'member_evaluations.id'], name=op.f('fk_talk_records_tenant_id_evaluation_id_member_evaluations')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_talk_records_tenant_id_tenants'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_talk_records'))
    )
    with op.batch_alter_table('talk_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_talk_records_tenant_id'), ['tenant_id'], unique=False)
    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table('talk_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_talk_records_tenant_id'))
    op.drop_table('talk_records')
    with op.batch_alter_table('rectifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rectifications_tenant_id'))
    op.drop_table('rectifications')
    with op.batch_alter_table('paper_tallies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_paper_tallies_tenant_id'))
    op.drop_table('paper_tallies')
    with op.batch_alter_table('notice_objections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notice_objections_tenant_id'))
        batch_op.drop_index('ix_notice_objections_branch')
    op.drop_table('notice_objections')
    with op.batch_alter_table('mentorships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mentorships_tenant_id'))
    op.drop_table('mentorships')
    with op.batch_alter_table('evaluation_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluation_scores_tenant_id'))
        batch_op.drop_index('ix_evaluation_scores_stage')
    op.drop_table('evaluation_scores')
    with op.batch_alter_table('ballots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ballots_tenant_id'))
        batch_op.drop_index('ix_ballots_meeting')
    op.drop_table('ballots')
    with op.batch_alter_table('ballot_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ballot_codes_tenant_id'))
        batch_op.drop_index('ix_ballot_codes_meeting')
    op.drop_table('ballot_codes')
    with op.batch_alter_table('role_grants', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_role_grants_tenant_id'))
    op.drop_table('role_grants')
    with op.batch_alter_table('report_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_jobs_tenant_id'))
        batch_op.drop_index('ix_report_jobs_sweep')
        batch_op.drop_index('ix_report_jobs_list')
        batch_op.drop_index('ix_report_jobs_expiry')
    op.drop_table('report_jobs')
    with op.batch_alter_table('rating_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rating_answers_tenant_id'))
    op.drop_table('rating_answers')
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notices_tenant_id'))
        batch_op.drop_index('ix_notices_inbox')
    op.drop_table('notices')
    with op.batch_alter_table('member_evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_evaluations_tenant_id'))
        batch_op.drop_index('ix_member_evaluations_round_branch')
        batch_op.drop_index('ix_member_evaluations_member')
    op.drop_table('member_evaluations')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_tenant_id'))
    op.drop_table('invitations')
    with op.batch_alter_table('evidence_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evidence_files_tenant_id'))
        batch_op.drop_index('ix_evidence_files_rating')
    op.drop_table('evidence_files')
    with op.batch_alter_table('criterion_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_criterion_scores_tenant_id'))
    op.drop_table('criterion_scores')
    with op.batch_alter_table('ballot_meetings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ballot_meetings_tenant_id'))
    op.drop_table('ballot_meetings')
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_auth_sessions_account')
    op.drop_table('auth_sessions')
    with op.batch_alter_table('round_branches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_round_branches_tenant_id'))
    op.drop_table('round_branches')
    with op.batch_alter_table('branch_ratings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_branch_ratings_tenant_id'))
        batch_op.drop_index('ix_branch_ratings_branch')
    op.drop_table('branch_ratings')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index('uq_accounts_tenant_member')
        batch_op.drop_index(batch_op.f('ix_accounts_tenant_id'))
    op.drop_table('accounts')
    with op.batch_alter_table('webhooks', schema=None) as batch_op:
        batch_op.drop_index('ix_webhooks_tenant_organisation')
        batch_op.drop_index(batch_op.f('ix_webhooks_tenant_id'))
    op.drop_table('webhooks')
    with op.batch_alter_table('quarterly_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarterly_reviews_tenant_id'))
    op.drop_table('quarterly_reviews')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index('ix_members_tenant_name')
        batch_op.drop_index(batch_op.f('ix_members_tenant_id'))
        batch_op.drop_index('ix_members_tenant_branch_status')
    op.drop_table('members')
    with op.batch_alter_table('member_rounds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_member_rounds_tenant_id'))
    op.drop_table('member_rounds')
    with op.batch_alter_table('export_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_deliveries_tenant_id'))
        batch_op.drop_index('ix_export_deliveries_log')
        batch_op.drop_index('ix_export_deliveries_due')
    op.drop_table('export_deliveries')
    with op.batch_alter_table('branch_rounds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_branch_rounds_tenant_id'))
    op.drop_table('branch_rounds')
    with op.batch_alter_table('rule_set_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rule_set_versions_tenant_id'))
    op.drop_table('rule_set_versions')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_messages_tenant_id'))
        batch_op.drop_index('ix_outbox_due')
    op.drop_table('outbox_messages')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index('ix_organisations_tenant_path')
        batch_op.drop_index('ix_organisations_tenant_parent')
        batch_op.drop_index(batch_op.f('ix_organisations_tenant_id'))
    op.drop_table('organisations')
    with op.batch_alter_table('export_targets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_targets_tenant_id'))
        batch_op.drop_index('ix_export_targets_due')
    op.drop_table('export_targets')
    with op.batch_alter_table('due_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_due_items_tenant_id'))
        batch_op.drop_index('ix_due_items_due')
    op.drop_table('due_items')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_tenant_time')
        batch_op.drop_index('ix_audit_events_object')
    op.drop_table('audit_events')
    op.drop_table('tenants')
    op.drop_table('operators')
    op.drop_table('demo_clock')
    # ### end Alembic commands ###
