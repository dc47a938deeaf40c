"""The record of erasures: per pseudonym, when, by whom, how far; never what.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 23:30:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "person_erasures",
        sa.Column("pseudonym", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("subject_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("requested_via", sa.String(length=16), nullable=False),
        sa.Column("requested_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("step", sa.String(length=32), server_default="started", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(completed_at IS NULL) = (subject_id IS NOT NULL)",
            name=op.f("ck_person_erasures_id_kept_while_running"),
        ),
        sa.CheckConstraint(
            "requested_via IN ('operator', 'iam')",
            name=op.f("ck_person_erasures_requested_via_allowed"),
        ),
        sa.PrimaryKeyConstraint("pseudonym", name=op.f("pk_person_erasures")),
    )


def downgrade() -> None:
    op.drop_table("person_erasures")
