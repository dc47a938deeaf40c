"""Indexes for the retention sweep: the oldest due rows of each kind, first.

The sweep removes delivered events, finished webhook deliveries, inbound event ids,
the details of finished requests and the join links of sessions that are over, in
batches of the oldest first; each of these makes a batch a short index walk.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 22:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_domain_events_occurred_at", "domain_events", ["occurred_at"])
    op.create_index(
        "ix_webhook_deliveries_finished_updated_at",
        "webhook_deliveries",
        ["updated_at"],
        postgresql_where=sa.text("status IN ('succeeded', 'parked')"),
    )
    op.create_index(
        "ix_inbound_webhook_events_received_at", "inbound_webhook_events", ["received_at"]
    )
    op.create_index(
        "ix_consultation_requests_details_kept",
        "consultation_requests",
        ["updated_at"],
        postgresql_where=sa.text("request_details IS NOT NULL"),
    )
    op.create_index(
        "ix_scheduled_sessions_join_url_kept",
        "scheduled_sessions",
        ["updated_at"],
        postgresql_where=sa.text("meeting_platform_join_url IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_scheduled_sessions_join_url_kept", table_name="scheduled_sessions")
    op.drop_index("ix_consultation_requests_details_kept", table_name="consultation_requests")
    op.drop_index("ix_inbound_webhook_events_received_at", table_name="inbound_webhook_events")
    op.drop_index("ix_webhook_deliveries_finished_updated_at", table_name="webhook_deliveries")
    op.drop_index("ix_domain_events_occurred_at", table_name="domain_events")
