"""Indexes for listing requests newest first by status, or all of them.

An operator's page of, say, the pending confirmations sorted every pending request
before taking the page (the index on status alone gives no order); with ten
thousand parked it took twice as long. These indexes end in the keyset cursor's
(requested_at, id), so a page is an ordered index walk that stops at its size.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 14:20:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_consultation_requests_status_requested_at",
        "consultation_requests",
        ["status", "requested_at", "id"],
    )
    op.create_index(
        "ix_consultation_requests_requested_at",
        "consultation_requests",
        ["requested_at", "id"],
    )
    # A prefix of the first: every query it served, that one serves.
    op.drop_index("ix_consultation_requests_status", table_name="consultation_requests")


def downgrade() -> None:
    op.create_index("ix_consultation_requests_status", "consultation_requests", ["status"])
    op.drop_index("ix_consultation_requests_requested_at", table_name="consultation_requests")
    op.drop_index(
        "ix_consultation_requests_status_requested_at", table_name="consultation_requests"
    )
