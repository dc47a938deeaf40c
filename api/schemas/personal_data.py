"""A person's data export and erasure, as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from core.vocabulary import ExportStatus


class DataExportOut(BaseModel):
    id: uuid.UUID
    person_id: uuid.UUID
    status: ExportStatus = Field(description="`pending` while it is gathered, then `ready`.")
    requested_at: datetime
    completed_at: datetime | None
    expires_at: datetime = Field(description="Deleted then (BOOKING_RETENTION_EXPORTS).")
    document_url: str = Field(description="GET it once `ready`: one JSON document.")
