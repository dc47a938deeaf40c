"""Request and response bodies for a consultant's availability."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    NaiveDatetime,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from api.openapi import PROBLEM_REF
from api.schemas.fields import IsoAwareDatetime, IsoDate, IsoDatetime, JsonInt
from core.vocabulary import SlotStatus
from db.availability.recurrence import load_zone
from db.availability.slots import MAX_SLOT_LENGTH

_MAX_SLOT_MINUTES = int(MAX_SLOT_LENGTH.total_seconds()) // 60
_BATCH_CAP = 10_000  # parsing bound only; the configured max_slots_per_request applies

LOCAL_DATE_TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$"
)


def _local_date_time_text(value: Any) -> Any:
    """Only the documented spelling: pydantic alone would also take a date, a Unix time
    or a space for the ``T``, none of which the schema describes."""
    if not isinstance(value, str) or re.fullmatch(LOCAL_DATE_TIME_PATTERN, value) is None:
        raise ValueError("expected a local date-time without an offset, e.g. 2026-10-19T09:00")
    return value


LocalDateTime = Annotated[
    NaiveDatetime,
    BeforeValidator(_local_date_time_text),
    # Not ``format: date-time``: that is RFC 3339, which requires the offset.
    WithJsonSchema({"type": "string", "pattern": LOCAL_DATE_TIME_PATTERN}),
]


class SlotWindow(BaseModel):
    """One slot. Both ends need an offset (``Z`` or ``+01:00``); naive times are refused."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"start_time": "2026-12-07T09:00:00+01:00", "end_time": "2026-12-07T12:00:00+01:00"}
            ]
        },
    )

    start_time: IsoAwareDatetime = Field(description="Start, inclusive, with an offset.")
    end_time: IsoAwareDatetime = Field(description="End, exclusive, with an offset.")

    @field_validator("start_time", "end_time")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:  # e.g. 9999-12-31T23:00-05:00
            raise ValueError("the time is out of range") from exc

    @model_validator(mode="after")
    def _ordered_and_bounded(self) -> SlotWindow:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if self.end_time - self.start_time > MAX_SLOT_LENGTH:
            raise ValueError(f"a slot lasts at most {_MAX_SLOT_MINUTES // 60} hours")
        return self


class SlotBatch(BaseModel):
    """Several slots, created together or not at all."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "slots": [
                        {"start_time": "2026-12-07T09:00:00Z", "end_time": "2026-12-07T10:00:00Z"},
                        {"start_time": "2026-12-08T14:00:00Z", "end_time": "2026-12-08T16:00:00Z"},
                    ]
                }
            ]
        },
    )

    slots: list[SlotWindow] = Field(min_length=1, max_length=_BATCH_CAP)


class RecurringSlots(BaseModel):
    """A recurring rule expanded into slots on the consultant's wall clock.

    The rule runs in ``time_zone`` (default: the consultant profile's), so 09:00 stays
    09:00 local across daylight-saving changes. A local time that does not exist (the
    spring-forward gap) is shifted forward by the gap, as RFC 5545 does: 02:30 becomes
    03:30. A local time that happens twice (fall back) means the first, earlier one.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "rrule": "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0",
                    "start_local": "2026-10-19T09:00",
                    "duration_minutes": 180,
                    "until": "2026-12-31",
                }
            ]
        },
    )

    rrule: str = Field(
        min_length=1,
        max_length=500,
        description=(
            "An RFC 5545 RRULE value without DTSTART (``RRULE:`` prefix optional); FREQ "
            "YEARLY, MONTHLY, WEEKLY, DAILY or HOURLY. COUNT or UNTIL may be given here "
            "instead of ``count``/``until``."
        ),
        examples=["FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0"],
    )
    start_local: LocalDateTime = Field(
        description=(
            "Wall-clock date-time in the time zone, without an offset: anchors the rule "
            "(first possible occurrence; default hour, minute and weekday)."
        ),
        examples=["2026-10-19T09:00"],
    )
    duration_minutes: JsonInt = Field(
        gt=0, le=_MAX_SLOT_MINUTES, description="Length of each slot.", examples=[180]
    )
    until: IsoDate | IsoDatetime | None = Field(
        default=None,
        description=(
            "Last day (local, inclusive) or date-time on which a slot may start; a "
            "date-time without an offset is local. Exclusive with ``count``."
        ),
        examples=["2026-12-31"],
    )
    count: JsonInt | None = Field(
        default=None, ge=1, description="Number of slots; exclusive with ``until``.", examples=[8]
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone of the rule; default: the consultant profile's.",
        examples=["Europe/Berlin"],
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and load_zone(value) is None:
            raise ValueError(f"{value!r} is not an IANA time zone")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> RecurringSlots:
        if self.count is not None and self.until is not None:
            raise ValueError("give count or until, not both")
        return self


def _shape(body: Any) -> str:
    """Which of the three bodies this is, judged by its keys (for precise errors)."""
    if isinstance(body, dict):
        if "rrule" in body:
            return "recurring"
        if "slots" in body:
            return "batch"
    elif isinstance(body, RecurringSlots | SlotBatch):
        return "recurring" if isinstance(body, RecurringSlots) else "batch"
    return "single"


AvailabilityCreate = Annotated[
    Annotated[SlotWindow, Tag("single")]
    | Annotated[SlotBatch, Tag("batch")]
    | Annotated[RecurringSlots, Tag("recurring")],
    Discriminator(_shape),
]

CREATE_EXAMPLES: dict[str, Any] = {
    "single": {
        "summary": "One slot",
        "value": {
            "start_time": "2026-12-07T09:00:00+01:00",
            "end_time": "2026-12-07T12:00:00+01:00",
        },
    },
    "batch": {
        "summary": "Several slots",
        "value": {
            "slots": [
                {"start_time": "2026-12-07T09:00:00Z", "end_time": "2026-12-07T10:00:00Z"},
                {"start_time": "2026-12-08T14:00:00Z", "end_time": "2026-12-08T16:00:00Z"},
            ]
        },
    },
    "recurring": {
        "summary": "Mondays and Wednesdays 09:00-12:00 local until the end of the year",
        "value": {
            "rrule": "FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0",
            "start_local": "2026-10-19T09:00",
            "duration_minutes": 180,
            "until": "2026-12-31",
            "time_zone": "Europe/Berlin",
        },
    },
}


class SlotStatusChange(BaseModel):
    """Open (``available``) or close (``unavailable``) a free slot."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"status": "unavailable"}]}
    )

    status: Literal[SlotStatus.AVAILABLE, SlotStatus.UNAVAILABLE] = Field(
        description="Held and booked slots belong to a consultation and cannot be changed here."
    )


class SlotOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a",
                    "consultant_user_id": "0b7e6a52-5d0c-4c87-a1b4-54c2b1f3e9d0",
                    "start_time": "2026-12-07T08:00:00Z",
                    "end_time": "2026-12-07T11:00:00Z",
                    "status": "available",
                    "held_by_request_id": None,
                    "hold_expires_at": None,
                    "created_at": "2026-11-27T10:00:00Z",
                    "updated_at": "2026-11-27T10:00:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    consultant_user_id: uuid.UUID
    start_time: datetime = Field(description="UTC.")
    end_time: datetime = Field(description="UTC, exclusive.")
    status: SlotStatus
    held_by_request_id: uuid.UUID | None = Field(
        description="The consultation request holding the slot while it awaits confirmation."
    )
    hold_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SlotsCreated(BaseModel):
    """The slots created, in start order."""

    items: list[SlotOut]


class ConflictingSlot(BaseModel):
    """An existing slot that a new one would overlap (the ``conflicts`` of a 409)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    start_time: datetime
    end_time: datetime
    status: SlotStatus


class TimeRangeOut(BaseModel):
    start_time: datetime
    end_time: datetime


OVERLAP_409: dict[int | str, dict[str, Any]] = {
    409: {
        "description": (
            "The new slots overlap existing ones (listed in `conflicts`) or each other "
            "(`overlapping_in_request`); nothing was created."
        ),
        "content": {
            "application/problem+json": {
                "schema": {"$ref": PROBLEM_REF},
                "example": {
                    "type": "https://booking-service.dev/problems/slot-overlap",
                    "title": "Overlapping availability",
                    "status": 409,
                    "detail": "1 existing slot overlaps the new availability; nothing was created.",
                    "conflicts": [
                        {
                            "id": "6f0c1c0e-8a43-4a59-9c61-0d8f3c1f2b7a",
                            "start_time": "2026-12-07T08:00:00Z",
                            "end_time": "2026-12-07T11:00:00Z",
                            "status": "booked",
                        }
                    ],
                    "conflict_count": 1,
                    "overlapping_in_request": [],
                },
            }
        },
    }
}
