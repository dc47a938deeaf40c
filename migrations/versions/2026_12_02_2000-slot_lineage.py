"""Carved slots remember the slot they were published as; requests are found by slot.

A booking carves a longer free slot into the booked part and free remainders;
cancelling or moving that booking used to leave the freed part beside the
remainders as separate slots, so a session longer than any one piece no longer
fitted. With the lineage the freed pieces of one published slot merge back.
Slots carved before this revision have no lineage and are left as they are.
Merging (and deleting) a slot looks up the open requests that asked for it, by the
new partial index on ``requested_slot_id``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 20:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "consultant_availability_slots",
        sa.Column("carved_from_slot_id", postgresql.UUID(as_uuid=True), nullable=True),
    )
    op.create_index(
        "ix_consultation_requests_requested_slot_id",
        "consultation_requests",
        ["requested_slot_id"],
        postgresql_where=sa.text("requested_slot_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_consultation_requests_requested_slot_id", table_name="consultation_requests")
    op.drop_column("consultant_availability_slots", "carved_from_slot_id")
