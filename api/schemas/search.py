"""Response bodies of the availability search."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class BookableTimeOut(BaseModel):
    """The earliest time a session of the service type fits into one free slot."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "slot_id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a",
                    "consultant_user_id": "0b7e6a52-5d0c-4c87-a1b4-54c2b1f3e9d0",
                    "start_time": "2026-12-07T09:00:00Z",
                    "end_time": "2026-12-07T09:45:00Z",
                    "slot_start": "2026-12-07T08:00:00Z",
                    "slot_end": "2026-12-07T11:00:00Z",
                }
            ]
        },
    )

    slot_id: uuid.UUID = Field(description="Request this slot to book the time.")
    consultant_user_id: uuid.UUID
    start_time: datetime = Field(
        description="The later of the slot's start and the window's (effective) start, UTC."
    )
    end_time: datetime = Field(description="start_time plus the service type's duration, UTC.")
    slot_start: datetime = Field(description="The whole free slot's start, UTC.")
    slot_end: datetime = Field(description="The whole free slot's end, UTC.")
