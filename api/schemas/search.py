"""Response bodies of the availability search."""

from __future__ import annotations

import datetime as dt
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.local_times import LocalTimes
from db.availability.search import BookableTime


class BookableTimeOut(BaseModel):
    """A start a free slot offers for a session of the service type."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "slot_id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a",
                    "consultant_user_id": "0b7e6a52-5d0c-4c87-a1b4-54c2b1f3e9d0",
                    "start_time": "2026-12-07T09:15:00Z",
                    "end_time": "2026-12-07T10:00:00Z",
                    "slot_start": "2026-12-07T08:00:00Z",
                    "slot_end": "2026-12-07T11:00:00Z",
                    "consultant_local": {
                        "time_zone": "Europe/Berlin",
                        "start_time": "2026-12-07T10:15:00+01:00",
                        "end_time": "2026-12-07T11:00:00+01:00",
                        "utc_offset": "+01:00",
                    },
                }
            ]
        },
    )

    slot_id: uuid.UUID = Field(description="Submit it with `start` to book this time.")
    consultant_user_id: uuid.UUID
    start_time: datetime = Field(
        description="On the service type's start grid on the consultant's clock, UTC."
    )
    end_time: datetime = Field(description="start_time plus the service type's duration, UTC.")
    slot_start: datetime = Field(description="The whole free slot's start, UTC.")
    slot_end: datetime = Field(description="The whole free slot's end, UTC.")
    consultant_local: LocalTimes = Field(description="The same times on the consultant's clock.")

    @classmethod
    def of(cls, found: BookableTime) -> BookableTimeOut:
        return cls(
            slot_id=found.slot_id,
            consultant_user_id=found.consultant_user_id,
            start_time=found.start_time,
            end_time=found.end_time,
            slot_start=found.slot_start,
            slot_end=found.slot_end,
            consultant_local=LocalTimes.on(found.time_zone, found.start_time, found.end_time),
        )


class BookableDay(BaseModel):
    date: dt.date = Field(description="A day in the page's `time_zone`.")
    items: list[BookableTimeOut] = Field(description="Its starts in this page, in order.")


class BookableDays(BaseModel):
    """A page of bookable starts (``group_by=day``), grouped by the day they start on
    in ``time_zone``; a day may go on in the next page."""

    time_zone: str
    days: list[BookableDay]
    next_cursor: str | None = Field(
        default=None, description="Opaque; absent on the last page.", examples=[None]
    )
