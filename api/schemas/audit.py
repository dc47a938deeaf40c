"""The audit trail as operators read it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.vocabulary import AuditAction, AuditActorKind, AuditTarget


class AuditEntryOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0c9f9d6e-5f0e-4d7b-8f4e-6a1f2b3c4d5e",
                    "occurred_at": "2026-12-02T10:15:00Z",
                    "actor_id": "33333333-3333-4333-8333-333333333333",
                    "actor_kind": "operator",
                    "action": "service_type.updated",
                    "target_type": "service_type",
                    "target_id": "4dd7f706-10a4-4e15-8543-dec56a782c53",
                    "changes": {"default_duration_minutes": {"before": 30, "after": 45}},
                }
            ]
        },
    )

    id: uuid.UUID
    occurred_at: datetime = Field(description="When the change was committed (its transaction).")
    actor_id: uuid.UUID | None = Field(description="Who made it; null for the IAM.")
    actor_kind: AuditActorKind
    action: AuditAction
    target_type: AuditTarget
    target_id: uuid.UUID
    changes: dict[str, dict[str, Any]] = Field(
        description='The fields that changed, each as `{"before": …, "after": …}` '
        "(`before` null for a new record, `after` null for a deleted one). Secrets are "
        "never recorded."
    )
