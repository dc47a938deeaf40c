"""Calendars: the consultants' external calendars and the busy time expanded from
them, private iCalendar feeds of sessions, and a SEQUENCE per session.

``consultant_calendars`` holds each linked calendar (its address and password
encrypted) with its sync state; ``consultant_busy_intervals`` the busy times, in pieces of
at most a day behind a B-tree on the consultant and the start, so that search, hold
and confirm ask for overlaps as a bounded index range, many consultants in one scan. ``calendar_feeds`` keeps the SHA-256 of each feed's token.
``scheduled_sessions.calendar_sequence`` starts at 0 for every existing session.
``consultant_profiles.linked_calendars`` counts each consultant's calendars (kept by a
trigger), so the search reads busy time only for consultants who have any.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 10:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNT_LINKED_CALENDARS = """
CREATE FUNCTION count_linked_calendars() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE consultant_profiles SET linked_calendars = linked_calendars + 1
         WHERE consultant_user_id = NEW.consultant_user_id;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE consultant_profiles SET linked_calendars = linked_calendars - 1
         WHERE consultant_user_id = OLD.consultant_user_id;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("owner_role", sa.String(length=16), nullable=False),
        sa.Column("owner_user_id", sa.UUID(), nullable=False),
        sa.Column("token_sha256", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "owner_role IN ('consultant', 'learner')",
            name=op.f("ck_calendar_feeds_owner_role_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_feeds")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_calendar_feeds_token_sha256")),
    )
    op.create_index(
        "ix_calendar_feeds_owner", "calendar_feeds", ["owner_role", "owner_user_id"], unique=False
    )
    op.create_table(
        "consultant_calendars",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("consultant_user_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("address_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("address_hint", sa.String(length=300), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("password_ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("sync_token", sa.Text(), nullable=True),
        sa.Column("ctag", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stale_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("busy_interval_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
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
            "kind IN ('ics', 'caldav')", name=op.f("ck_consultant_calendars_kind_allowed")
        ),
        sa.ForeignKeyConstraint(
            ["consultant_user_id"],
            ["consultant_profiles.consultant_user_id"],
            name=op.f("fk_consultant_calendars_consultant_user_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultant_calendars")),
    )
    op.create_index(
        "ix_consultant_calendars_consultant_user_id",
        "consultant_calendars",
        ["consultant_user_id"],
        unique=False,
    )
    op.execute(
        "CREATE TRIGGER consultant_calendars_set_updated_at BEFORE UPDATE ON "
        "consultant_calendars FOR EACH ROW EXECUTE FUNCTION set_updated_at()"
    )
    op.add_column(
        "consultant_profiles",
        sa.Column("linked_calendars", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_consultant_profiles_linked_calendars_counted"),
        "consultant_profiles",
        "linked_calendars >= 0",
    )
    op.execute(COUNT_LINKED_CALENDARS)
    op.execute(
        "CREATE TRIGGER consultant_calendars_counted AFTER INSERT OR DELETE OR UPDATE OF "
        "consultant_user_id ON consultant_calendars "
        "FOR EACH ROW EXECUTE FUNCTION count_linked_calendars()"
    )
    op.create_table(
        "consultant_busy_intervals",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("calendar_id", sa.UUID(), nullable=False),
        sa.Column("consultant_user_id", sa.UUID(), nullable=False),
        sa.Column("source_key", sa.String(length=1000), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "end_time > start_time", name=op.f("ck_consultant_busy_intervals_end_after_start")
        ),
        sa.CheckConstraint(
            "end_time - start_time <= interval '24 hours'",
            name=op.f("ck_consultant_busy_intervals_at_most_a_day"),
        ),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["consultant_calendars.id"],
            name=op.f("fk_consultant_busy_intervals_calendar_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consultant_busy_intervals")),
    )
    op.create_index(
        "ix_consultant_busy_intervals_calendar_source",
        "consultant_busy_intervals",
        ["calendar_id", "source_key"],
        unique=False,
    )
    op.create_index(
        "ix_consultant_busy_intervals_consultant_start",
        "consultant_busy_intervals",
        ["consultant_user_id", "start_time"],
        unique=False,
        postgresql_include=["end_time"],
    )
    op.add_column(
        "scheduled_sessions",
        sa.Column("calendar_sequence", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("scheduled_sessions", "calendar_sequence")
    op.drop_index(
        "ix_consultant_busy_intervals_consultant_start", table_name="consultant_busy_intervals"
    )
    op.drop_index(
        "ix_consultant_busy_intervals_calendar_source", table_name="consultant_busy_intervals"
    )
    op.drop_table("consultant_busy_intervals")
    op.execute("DROP TRIGGER consultant_calendars_counted ON consultant_calendars")
    op.execute("DROP FUNCTION count_linked_calendars()")
    op.drop_constraint(
        op.f("ck_consultant_profiles_linked_calendars_counted"),
        "consultant_profiles",
        type_="check",
    )
    op.drop_column("consultant_profiles", "linked_calendars")
    op.drop_index("ix_consultant_calendars_consultant_user_id", table_name="consultant_calendars")
    op.drop_table("consultant_calendars")
    op.drop_index("ix_calendar_feeds_owner", table_name="calendar_feeds")
    op.drop_table("calendar_feeds")
