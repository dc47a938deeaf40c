"""Scheduling policies: buffers, notice, horizon and cutoffs per service type; buffers
and caps per consultant; the buffers a held or booked slot carries.

Every new column of a service type or a profile is null (no buffer, no cap, no
horizon, the notice and cutoffs of the settings), so existing rows keep today's
behaviour. ``consultant_service_limits`` holds caps per service type. Slots get
``buffer_before_minutes``/``buffer_after_minutes`` (0 for every existing slot): a held
or booked slot spans its session plus these, so the no-overlap constraint keeps
buffered sessions apart. A partial index on held slots by consultant and start
serves the counting of caps.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 08:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MINUTES_IN_A_YEAR = 527040

SERVICE_TYPE_POLICIES = {
    "buffer_before_minutes": "BETWEEN 0 AND 240",
    "buffer_after_minutes": "BETWEEN 0 AND 240",
    "minimum_notice_minutes": f"BETWEEN 0 AND {MINUTES_IN_A_YEAR}",
    "booking_horizon_days": "BETWEEN 1 AND 730",
    "cancel_cutoff_minutes": f"BETWEEN 0 AND {MINUTES_IN_A_YEAR}",
    "reschedule_cutoff_minutes": f"BETWEEN 0 AND {MINUTES_IN_A_YEAR}",
}
PROFILE_POLICIES = {
    "buffer_before_minutes": "BETWEEN 0 AND 240",
    "buffer_after_minutes": "BETWEEN 0 AND 240",
    "max_sessions_per_day": "BETWEEN 1 AND 100",
    "max_sessions_per_week": "BETWEEN 1 AND 500",
}
CAP_RANGES = {
    "max_sessions_per_day": "BETWEEN 1 AND 100",
    "max_sessions_per_week": "BETWEEN 1 AND 500",
}
_CONSTRAINT_SUFFIX = {
    "buffer_before_minutes": "buffer_before_range",
    "buffer_after_minutes": "buffer_after_range",
    "minimum_notice_minutes": "minimum_notice_range",
    "booking_horizon_days": "booking_horizon_range",
    "cancel_cutoff_minutes": "cancel_cutoff_range",
    "reschedule_cutoff_minutes": "reschedule_cutoff_range",
    "max_sessions_per_day": "max_sessions_per_day_range",
    "max_sessions_per_week": "max_sessions_per_week_range",
}


def _add_nullable_policies(table: str, policies: dict[str, str]) -> None:
    for column, bounds in policies.items():
        op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
        op.create_check_constraint(
            op.f(f"ck_{table}_{_CONSTRAINT_SUFFIX[column]}"),
            table,
            f"{column} IS NULL OR {column} {bounds}",
        )


def _drop_policies(table: str, policies: dict[str, str]) -> None:
    for column in policies:
        op.drop_constraint(op.f(f"ck_{table}_{_CONSTRAINT_SUFFIX[column]}"), table, type_="check")
        op.drop_column(table, column)


def upgrade() -> None:
    _add_nullable_policies("consultation_service_types", SERVICE_TYPE_POLICIES)
    _add_nullable_policies("consultant_profiles", PROFILE_POLICIES)
    op.create_table(
        "consultant_service_limits",
        sa.Column("consultant_user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("consultation_service_type_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("max_sessions_per_day", sa.Integer(), nullable=True),
        sa.Column("max_sessions_per_week", sa.Integer(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        *(
            sa.CheckConstraint(
                f"{column} IS NULL OR {column} {bounds}",
                name=op.f(f"ck_consultant_service_limits_{_CONSTRAINT_SUFFIX[column]}"),
            )
            for column, bounds in CAP_RANGES.items()
        ),
        sa.ForeignKeyConstraint(
            ["consultant_user_id"],
            ["consultant_profiles.consultant_user_id"],
            name=op.f("fk_consultant_service_limits_consultant_user_id_consultant_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["consultation_service_type_id"],
            ["consultation_service_types.id"],
            name=op.f(
                "fk_consultant_service_limits_consultation_service_type_id_consultation_service_types"
            ),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "consultant_user_id",
            "consultation_service_type_id",
            name=op.f("pk_consultant_service_limits"),
        ),
    )
    op.execute(
        "CREATE TRIGGER consultant_service_limits_set_updated_at BEFORE UPDATE ON "
        "consultant_service_limits FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
    )
    for column in ("buffer_before_minutes", "buffer_after_minutes"):
        op.add_column(
            "consultant_availability_slots",
            sa.Column(column, sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
    op.create_index(
        "ix_availability_slots_held_consultant_start",
        "consultant_availability_slots",
        ["consultant_user_id", "start_time"],
        postgresql_where=sa.text("status = 'held'"),
    )
    op.create_check_constraint(
        op.f("ck_consultant_availability_slots_buffers_only_around_sessions"),
        "consultant_availability_slots",
        "buffer_before_minutes BETWEEN 0 AND 240 AND buffer_after_minutes BETWEEN 0 AND 240 "
        "AND (status IN ('held', 'booked') "
        "OR (buffer_before_minutes = 0 AND buffer_after_minutes = 0))",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_availability_slots_held_consultant_start", table_name="consultant_availability_slots"
    )
    op.drop_constraint(
        op.f("ck_consultant_availability_slots_buffers_only_around_sessions"),
        "consultant_availability_slots",
        type_="check",
    )
    op.drop_column("consultant_availability_slots", "buffer_after_minutes")
    op.drop_column("consultant_availability_slots", "buffer_before_minutes")
    op.drop_table("consultant_service_limits")
    _drop_policies("consultant_profiles", PROFILE_POLICIES)
    _drop_policies("consultation_service_types", SERVICE_TYPE_POLICIES)
