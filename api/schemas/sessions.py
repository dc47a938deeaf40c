"""Request and response bodies for scheduled sessions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from api.schemas.fields import IsoAwareDatetime
from api.schemas.local_times import LocalTimes, RowWith, SessionZones
from core.vocabulary import ParticipantRole, SessionStatus


class RescheduleBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"slot_id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a", "start": "2026-12-08T14:30:00Z"}
            ]
        },
    )

    slot_id: uuid.UUID = Field(
        description="A free slot of the session's consultant (a `slot_id` from the search)."
    )
    start: IsoAwareDatetime | None = Field(
        default=None,
        description="Move to exactly this start in the slot (a `start_time` from the "
        "search); without it, to the earliest start the slot offers. Not an offered "
        "start: 422 `start-off-grid`; not free: 409 `start-unavailable`.",
    )

    @field_validator("start")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)


class NoShowBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"party": "learner"}]}
    )

    party: ParticipantRole = Field(
        description="Who did not show up. A consultant reports the learner only."
    )


_EXAMPLE: JsonDict = {
    "id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
    "request_id": "3f1e2d4c-5b6a-5789-8c0d-1e2f3a4b5c6d",
    "requester_id": "11111111-1111-4111-8111-111111111111",
    "consultant_id": "22222222-2222-4222-8222-000000000001",
    "service_type_id": "8d0f1f0e-3c1a-4c2e-9a55-2b7c9f1e0a11",
    "slot_id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a",
    "start": "2026-12-07T09:00:00Z",
    "end": "2026-12-07T09:45:00Z",
    "learner_local": {
        "time_zone": "Asia/Tokyo",
        "start_time": "2026-12-07T18:00:00+09:00",
        "end_time": "2026-12-07T18:45:00+09:00",
        "utc_offset": "+09:00",
    },
    "consultant_local": {
        "time_zone": "America/New_York",
        "start_time": "2026-12-07T04:00:00-05:00",
        "end_time": "2026-12-07T04:45:00-05:00",
        "utc_offset": "-05:00",
    },
    "status": "scheduled",
    "cancellation_reason": None,
    "cancelled_by": None,
    "actual_start": None,
    "actual_end": None,
    "learner_joined_at": None,
    "consultant_joined_at": None,
    "created_at": "2026-12-01T10:20:00Z",
    "updated_at": "2026-12-01T10:20:01Z",
}


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: uuid.UUID
    request_id: uuid.UUID = Field(validation_alias="consultation_request_id")
    requester_id: uuid.UUID = Field(validation_alias="requester_user_id")
    consultant_id: uuid.UUID = Field(validation_alias="consultant_user_id")
    service_type_id: uuid.UUID = Field(validation_alias="consultation_service_type_id")
    slot_id: uuid.UUID | None = Field(validation_alias="availability_slot_id")
    start: datetime = Field(validation_alias="scheduled_start_time")
    end: datetime = Field(validation_alias="scheduled_end_time")
    learner_local: LocalTimes = Field(
        description="`start` and `end` on the learner's clock (the request's `learner_time_zone`)."
    )
    consultant_local: LocalTimes = Field(
        description="`start` and `end` on the consultant's clock (their profile's `time_zone`)."
    )
    status: SessionStatus
    cancellation_reason: str | None = Field(description="A reason code.")
    cancelled_by: str | None = Field(description="requester, consultant, operator or system.")
    actual_start: datetime | None = Field(validation_alias="actual_start_time")
    actual_end: datetime | None = Field(validation_alias="actual_end_time")
    learner_joined_at: datetime | None
    consultant_joined_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Any, zones: SessionZones) -> Self:
        """The session row, with its times on both parties' clocks."""
        start, end = row.scheduled_start_time, row.scheduled_end_time
        return cls.model_validate(
            RowWith(
                row,
                learner_local=LocalTimes.on(zones.learner, start, end),
                consultant_local=LocalTimes.on(zones.consultant, start, end),
            )
        )


class SessionDetail(SessionOut):
    """One session as its parties and operators see it: with the meeting link."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [{**_EXAMPLE, "join_url": "https://meet.jit.si/booking-5a4b3c2d"}]
        },
    )

    join_url: str | None = Field(
        validation_alias="meeting_platform_join_url",
        description="The meeting link; null until the meeting is ready.",
    )
