"""The learner's time zone on a request.

``consultation_requests.learner_time_zone`` (IANA) is the zone of the learner's wall
clock in responses and event payloads. Requests stored before it have none (null)
and read as ``BOOKING_DEFAULT_LEARNER_TIME_ZONE``, so nothing they show changes
unless that setting does.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "consultation_requests",
        sa.Column("learner_time_zone", sa.String(length=64), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("consultation_requests", "learner_time_zone")
