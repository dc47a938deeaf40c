"""Calendars: the end of the window each calendar's busy set was expanded over, so an
unchanged calendar is still expanded afresh once time has moved its window on.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 11:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "consultant_calendars",
        sa.Column("expanded_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("consultant_calendars", "expanded_until")
