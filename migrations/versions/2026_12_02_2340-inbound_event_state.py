"""Inbound events remember whether they were passed on.

An event is now recorded in a short transaction of its own before its workflow is
signalled, and marked ``delivered`` after, so no transaction stays open across the
signal. Events recorded before this were committed only after their signal, so
they are all ``delivered``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 23:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "inbound_webhook_events"


def upgrade() -> None:
    op.add_column(
        TABLE,
        sa.Column("state", sa.String(length=16), nullable=False, server_default="delivered"),
    )
    # The default only fills the existing rows: new ones always name their state.
    op.alter_column(TABLE, "state", server_default=None)
    op.add_column(TABLE, sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(
        op.f("ck_inbound_webhook_events_state_allowed"),
        TABLE,
        "state IN ('received', 'delivered')",
    )


def downgrade() -> None:
    # Undelivered events are forgotten, so a redelivery of them is signalled again.
    op.execute(sa.text("DELETE FROM inbound_webhook_events WHERE state = 'received'"))
    op.drop_constraint(op.f("ck_inbound_webhook_events_state_allowed"), TABLE, type_="check")
    op.drop_column(TABLE, "delivered_at")
    op.drop_column(TABLE, "state")
