"""Starts on a grid: a start step per service type, the start a request chose.

``consultation_service_types.start_interval_minutes`` (5 to 240, null: the setting
``BOOKING_DEFAULT_START_INTERVAL``) spaces the starts the search offers on the
consultant's clock; existing types keep null and so the service-wide default.
``consultation_requests.requested_start_time`` records the start a learner chose;
requests stored before it have none and keep their earliest-fit behaviour.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 23:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "consultation_service_types",
        sa.Column("start_interval_minutes", sa.Integer(), nullable=True),
    )
    op.create_check_constraint(
        op.f("ck_consultation_service_types_start_interval_range"),
        "consultation_service_types",
        "start_interval_minutes IS NULL OR start_interval_minutes BETWEEN 5 AND 240",
    )
    op.add_column(
        "consultation_requests",
        sa.Column("requested_start_time", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("consultation_requests", "requested_start_time")
    op.drop_constraint(
        op.f("ck_consultation_service_types_start_interval_range"),
        "consultation_service_types",
        type_="check",
    )
    op.drop_column("consultation_service_types", "start_interval_minutes")
