"""Personal data exports: one row per export, its document stored in numbered parts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 23:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "personal_data_exports",
        sa.Column(
            "id",
            postgresql.UUID(as_uuid=True),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
        sa.Column("subject_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("requested_by", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column(
            "requested_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'ready')",
            name=op.f("ck_personal_data_exports_status_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_data_exports")),
    )
    op.create_index("ix_personal_data_exports_subject_id", "personal_data_exports", ["subject_id"])
    op.create_index(
        "ix_personal_data_exports_requested_at", "personal_data_exports", ["requested_at"]
    )
    op.create_table(
        "personal_data_export_parts",
        sa.Column("export_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("section", sa.String(length=32), nullable=False),
        sa.Column("items", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["personal_data_exports.id"],
            name=op.f("fk_personal_data_export_parts_export_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "export_id", "position", name=op.f("pk_personal_data_export_parts")
        ),
    )


def downgrade() -> None:
    op.drop_table("personal_data_export_parts")
    op.drop_index("ix_personal_data_exports_requested_at", table_name="personal_data_exports")
    op.drop_index("ix_personal_data_exports_subject_id", table_name="personal_data_exports")
    op.drop_table("personal_data_exports")
