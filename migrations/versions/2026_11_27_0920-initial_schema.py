"""Initial schema: the seed tables, the no-overlap constraint and the events outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 09:20:02.882902+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


UPDATED_AT_TABLES = (
    "consultation_service_types",
    "consultant_profiles",
    "consultant_availability_slots",
    "consultation_requests",
    "scheduled_sessions",
)


def upgrade() -> None:
    # The no-overlap exclusion constraint mixes a uuid equality with a range overlap.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute(
        """
        CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := now();
            RETURN NEW;
        END
        $$
        """
    )
    op.create_table(
        "consultant_profiles",
        sa.Column("consultant_user_id", sa.UUID(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("bio", sa.Text(), nullable=True),
        sa.Column(
            "specializations",
            sa.ARRAY(sa.String(length=100)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column(
            "is_available_for_booking",
            sa.Boolean(),
            server_default=sa.text("true"),
            nullable=False,
        ),
        sa.Column("time_zone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consultant_user_id", name=op.f("pk_consultant_profiles")),
    )
    op.create_index(
        "ix_consultant_profiles_specializations",
        "consultant_profiles",
        ["specializations"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_table(
        "consultation_service_types",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("default_duration_minutes", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("required_specialization", sa.String(length=100), nullable=True),
        sa.Column("confirmation_timeout_seconds", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "confirmation_timeout_seconds IS NULL OR confirmation_timeout_seconds > 0",
            name=op.f("ck_consultation_service_types_confirmation_timeout_positive"),
        ),
        sa.CheckConstraint(
            "default_duration_minutes > 0",
            name=op.f("ck_consultation_service_types_duration_positive"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_service_types")),
        sa.UniqueConstraint("name", name=op.f("uq_consultation_service_types_name")),
    )
    op.create_table(
        "domain_events",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("sequence", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "transaction_id",
            sa.BigInteger(),
            server_default=sa.text("(pg_current_xact_id()::text)::bigint"),
            nullable=False,
        ),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("schema_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("consultation_request_id", sa.UUID(), nullable=True),
        sa.Column("scheduled_session_id", sa.UUID(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_domain_events_dedupe_key")),
        sa.UniqueConstraint("sequence", name=op.f("uq_domain_events_sequence")),
    )
    op.create_index(
        "ix_domain_events_consultation_request_id",
        "domain_events",
        ["consultation_request_id"],
        unique=False,
    )
    op.create_index(
        "ix_domain_events_event_type_sequence",
        "domain_events",
        ["event_type", "sequence"],
        unique=False,
    )
    op.create_table(
        "consultant_availability_slots",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("consultant_user_id", sa.UUID(), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="available", nullable=False),
        sa.Column("held_by_request_id", sa.UUID(), nullable=True),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        postgresql.ExcludeConstraint(
            (sa.column("consultant_user_id"), "="),
            (sa.text("tstzrange(start_time, end_time)"), "&&"),
            using="gist",
            name="ex_availability_slots_no_overlap",
        ),
        sa.CheckConstraint(
            "(status = 'held') = (held_by_request_id IS NOT NULL)",
            name=op.f("ck_consultant_availability_slots_held_iff_holder"),
        ),
        sa.CheckConstraint(
            "status IN ('available', 'held', 'booked', 'unavailable')",
            name=op.f("ck_consultant_availability_slots_status_allowed"),
        ),
        sa.CheckConstraint(
            "end_time > start_time",
            name=op.f("ck_consultant_availability_slots_end_after_start"),
        ),
        sa.CheckConstraint(
            "end_time - start_time <= interval '24 hours'",
            name=op.f("ck_consultant_availability_slots_at_most_a_day"),
        ),
        sa.ForeignKeyConstraint(
            ["consultant_user_id"],
            ["consultant_profiles.consultant_user_id"],
            name=op.f("fk_consultant_availability_slots_consultant_user_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultant_availability_slots")),
    )
    op.create_index(
        "ix_availability_slots_available_start",
        "consultant_availability_slots",
        ["start_time", "id"],
        unique=False,
        postgresql_where=sa.text("status = 'available'"),
        postgresql_include=["end_time", "consultant_user_id"],
    )
    op.create_index(
        "ix_availability_slots_consultant_start_end",
        "consultant_availability_slots",
        ["consultant_user_id", "start_time", "end_time"],
        unique=False,
    )
    op.create_index(
        "ix_availability_slots_held_by_request_id",
        "consultant_availability_slots",
        ["held_by_request_id"],
        unique=False,
    )
    op.create_index(
        "ix_availability_slots_status",
        "consultant_availability_slots",
        ["status"],
        unique=False,
    )
    op.create_table(
        "consultation_requests",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("requester_user_id", sa.UUID(), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=True),
        sa.Column("consultation_service_type_id", sa.UUID(), nullable=False),
        sa.Column("preferred_consultant_user_id", sa.UUID(), nullable=True),
        sa.Column("preferred_start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("preferred_end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request_details", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.String(length=32),
            server_default="pending_assignment",
            nullable=False,
        ),
        sa.Column("status_reason", sa.String(length=64), nullable=True),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("assigned_consultant_user_id", sa.UUID(), nullable=True),
        sa.Column("scheduled_session_id", sa.UUID(), nullable=True),
        sa.Column("requested_slot_id", sa.UUID(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("confirmation_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending_assignment', 'pending_confirmation', 'scheduled', 'completed', 'cancelled', 'rejected')",
            name=op.f("ck_consultation_requests_status_allowed"),
        ),
        sa.CheckConstraint(
            "attempts >= 0", name=op.f("ck_consultation_requests_attempts_non_negative")
        ),
        sa.CheckConstraint(
            "preferred_end_time IS NULL OR preferred_start_time IS NULL OR preferred_end_time > preferred_start_time",
            name=op.f("ck_consultation_requests_preferred_window_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_consultant_user_id"],
            ["consultant_profiles.consultant_user_id"],
            name=op.f("fk_consultation_requests_assigned_consultant_user_id"),
        ),
        sa.ForeignKeyConstraint(
            ["consultation_service_type_id"],
            ["consultation_service_types.id"],
            name=op.f("fk_consultation_requests_consultation_service_type_id"),
        ),
        sa.ForeignKeyConstraint(
            ["preferred_consultant_user_id"],
            ["consultant_profiles.consultant_user_id"],
            name=op.f("fk_consultation_requests_preferred_consultant_user_id"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_slot_id"],
            ["consultant_availability_slots.id"],
            name=op.f("fk_consultation_requests_requested_slot_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultation_requests")),
        sa.UniqueConstraint(
            "requester_user_id",
            "idempotency_key",
            name=op.f("uq_consultation_requests_requester_user_id_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "scheduled_session_id",
            name=op.f("uq_consultation_requests_scheduled_session_id"),
        ),
    )
    op.create_index(
        "ix_consultation_requests_assigned_status",
        "consultation_requests",
        ["assigned_consultant_user_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_consultation_requests_requester_requested_at",
        "consultation_requests",
        ["requester_user_id", "requested_at"],
        unique=False,
    )
    op.create_index(
        "ix_consultation_requests_status",
        "consultation_requests",
        ["status"],
        unique=False,
    )
    op.create_table(
        "consultation_request_drafts",
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("requester_user_id", sa.UUID(), nullable=False),
        sa.Column("request_details", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_consultation_request_drafts")),
    )
    op.create_index(
        "ix_consultation_request_drafts_created_at",
        "consultation_request_drafts",
        ["created_at"],
        unique=False,
    )
    op.create_table(
        "scheduled_sessions",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("consultation_request_id", sa.UUID(), nullable=False),
        sa.Column("requester_user_id", sa.UUID(), nullable=False),
        sa.Column("consultant_user_id", sa.UUID(), nullable=False),
        sa.Column("consultation_service_type_id", sa.UUID(), nullable=False),
        sa.Column("availability_slot_id", sa.UUID(), nullable=True),
        sa.Column("scheduled_start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled_end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meeting_platform_session_id", sa.String(length=255), nullable=True),
        sa.Column("meeting_platform_join_url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=32), server_default="scheduled", nullable=False),
        sa.Column("cancellation_reason", sa.String(length=500), nullable=True),
        sa.Column("cancelled_by", sa.String(length=20), nullable=True),
        sa.Column("learner_joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consultant_joined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_end_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'in_progress', 'completed', 'cancelled_by_user', 'cancelled_by_consultant', 'cancelled', 'no_show_user', 'no_show_consultant')",
            name=op.f("ck_scheduled_sessions_status_allowed"),
        ),
        sa.CheckConstraint(
            "scheduled_end_time > scheduled_start_time",
            name=op.f("ck_scheduled_sessions_end_after_start"),
        ),
        sa.ForeignKeyConstraint(
            ["availability_slot_id"],
            ["consultant_availability_slots.id"],
            name=op.f("fk_scheduled_sessions_availability_slot_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["consultant_user_id"],
            ["consultant_profiles.consultant_user_id"],
            name=op.f("fk_scheduled_sessions_consultant_user_id"),
        ),
        sa.ForeignKeyConstraint(
            ["consultation_request_id"],
            ["consultation_requests.id"],
            name=op.f("fk_scheduled_sessions_consultation_request_id"),
        ),
        sa.ForeignKeyConstraint(
            ["consultation_service_type_id"],
            ["consultation_service_types.id"],
            name=op.f("fk_scheduled_sessions_consultation_service_type_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_sessions")),
        sa.UniqueConstraint(
            "consultation_request_id",
            name=op.f("uq_scheduled_sessions_consultation_request_id"),
        ),
    )
    op.create_index(
        "ix_scheduled_sessions_consultant_start",
        "scheduled_sessions",
        ["consultant_user_id", "scheduled_start_time"],
        unique=False,
    )
    op.create_index(
        "ix_scheduled_sessions_meeting_session",
        "scheduled_sessions",
        ["meeting_platform_session_id"],
        unique=False,
    )
    op.create_index(
        "ix_scheduled_sessions_requester_start",
        "scheduled_sessions",
        ["requester_user_id", "scheduled_start_time"],
        unique=False,
    )
    op.create_index("ix_scheduled_sessions_status", "scheduled_sessions", ["status"], unique=False)
    # The two foreign keys that close cycles are added once both tables exist.
    op.create_foreign_key(
        op.f("fk_consultant_availability_slots_held_by_request_id"),
        "consultant_availability_slots",
        "consultation_requests",
        ["held_by_request_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        op.f("fk_consultation_requests_scheduled_session_id"),
        "consultation_requests",
        "scheduled_sessions",
        ["scheduled_session_id"],
        ["id"],
        ondelete="SET NULL",
    )
    for table in UPDATED_AT_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_set_updated_at BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
        )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_consultation_requests_scheduled_session_id"),
        "consultation_requests",
        type_="foreignkey",
    )
    op.drop_constraint(
        op.f("fk_consultant_availability_slots_held_by_request_id"),
        "consultant_availability_slots",
        type_="foreignkey",
    )
    op.drop_index("ix_scheduled_sessions_status", table_name="scheduled_sessions")
    op.drop_index("ix_scheduled_sessions_requester_start", table_name="scheduled_sessions")
    op.drop_index("ix_scheduled_sessions_meeting_session", table_name="scheduled_sessions")
    op.drop_index("ix_scheduled_sessions_consultant_start", table_name="scheduled_sessions")
    op.drop_table("scheduled_sessions")
    op.drop_index("ix_consultation_requests_status", table_name="consultation_requests")
    op.drop_index(
        "ix_consultation_requests_requester_requested_at",
        table_name="consultation_requests",
    )
    op.drop_index("ix_consultation_requests_assigned_status", table_name="consultation_requests")
    op.drop_index(
        "ix_consultation_request_drafts_created_at", table_name="consultation_request_drafts"
    )
    op.drop_table("consultation_request_drafts")
    op.drop_table("consultation_requests")
    op.drop_index("ix_availability_slots_status", table_name="consultant_availability_slots")
    op.drop_index(
        "ix_availability_slots_held_by_request_id",
        table_name="consultant_availability_slots",
    )
    op.drop_index(
        "ix_availability_slots_consultant_start_end",
        table_name="consultant_availability_slots",
    )
    op.drop_index(
        "ix_availability_slots_available_start",
        table_name="consultant_availability_slots",
        postgresql_where=sa.text("status = 'available'"),
        postgresql_include=["end_time", "consultant_user_id"],
    )
    op.drop_table("consultant_availability_slots")
    op.drop_index("ix_domain_events_event_type_sequence", table_name="domain_events")
    op.drop_index("ix_domain_events_consultation_request_id", table_name="domain_events")
    op.drop_table("domain_events")
    op.drop_table("consultation_service_types")
    op.drop_index(
        "ix_consultant_profiles_specializations",
        table_name="consultant_profiles",
        postgresql_using="gin",
    )
    op.drop_table("consultant_profiles")
    op.execute("DROP FUNCTION set_updated_at()")
    # btree_gist stays: other schemas in the database may use it.
