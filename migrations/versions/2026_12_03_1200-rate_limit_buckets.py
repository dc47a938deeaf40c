"""Rate-limit buckets shared by every API process: one row per user and kind of call,
holding the time the bucket is full again (the generic cell rate algorithm).

UNLOGGED, since it is written on every request and worth nothing after a crash (a lost
row is a full bucket); fillfactor 50, so that its updates stay HOT.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_buckets",
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("theoretical_arrival", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('read', 'write')", name=op.f("ck_rate_limit_buckets_kind_allowed")
        ),
        sa.PrimaryKeyConstraint("user_id", "kind", name=op.f("pk_rate_limit_buckets")),
        postgresql_with={"fillfactor": "50"},
        prefixes=["UNLOGGED"],
    )


def downgrade() -> None:
    op.drop_table("rate_limit_buckets")
