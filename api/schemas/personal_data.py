"""A person's data export and erasure, as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.vocabulary import ErasureRequester, ErasureStep, ExportStatus


class DataExportOut(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    status: ExportStatus = Field(description="`pending` while it is gathered, then `ready`.")
    requested_at: datetime
    completed_at: datetime | None
    expires_at: datetime = Field(description="Deleted then (BOOKING_RETENTION_EXPORTS).")
    document_url: str = Field(description="GET it once `ready`: one JSON document.")


class ErasureOut(BaseModel):
    """That a person is (being) erased: when, asked by whom, how far. Never what."""

    person_pseudonym: uuid.UUID = Field(
        description="What replaced the person's id in every row and kept event."
    )
    status: Literal["in_progress", "completed"]
    step: ErasureStep
    requested_via: ErasureRequester
    requested_by: uuid.UUID | None = Field(description="The operator; null for the IAM.")
    requested_at: datetime
    completed_at: datetime | None
    workflow_id: str = Field(description="Its workflow in the Temporal UI, with its progress.")
