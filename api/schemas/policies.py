"""The fields of scheduling policies, shared by service types and consultant profiles."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from api.schemas.fields import JSON_NUMBER

MINUTES_IN_A_YEAR = 366 * 24 * 60

# The bounds belong to the integer, not to the optional field, so that the OpenAPI
# schema states them (``minimum``/``maximum`` inside the ``anyOf``) and clients and
# fuzzers know them.
BufferMinutes = Annotated[int, Field(ge=0, le=240), JSON_NUMBER]
AheadMinutes = Annotated[int, Field(ge=0, le=MINUTES_IN_A_YEAR), JSON_NUMBER]
HorizonDays = Annotated[int, Field(ge=1, le=730), JSON_NUMBER]
SessionsPerDay = Annotated[int, Field(ge=1, le=100), JSON_NUMBER]
SessionsPerWeek = Annotated[int, Field(ge=1, le=500), JSON_NUMBER]

BUFFER_BEFORE = Field(
    default=None,
    description="Minutes kept free before each session (preparation), inside the "
    "consultant's published time. Null: none. The larger of the service type's and the "
    "consultant's applies.",
    examples=[10],
)
BUFFER_AFTER = Field(
    default=None,
    description="Minutes kept free after each session (notes), inside the consultant's "
    "published time. Null: none. The larger of the service type's and the consultant's "
    "applies.",
    examples=[15],
)
MINIMUM_NOTICE = Field(
    default=None,
    description="A session starts at least this many minutes after it is booked. Null: "
    "the service-wide `BOOKING_MINIMUM_NOTICE`.",
    examples=[1440],
)
BOOKING_HORIZON = Field(
    default=None,
    description="A session starts at most this many days after it is booked. Null: no horizon.",
    examples=[60],
)
CANCEL_CUTOFF = Field(
    default=None,
    description="The learner may cancel until this many minutes before the start. Null: "
    "the service-wide `BOOKING_REQUESTER_CANCEL_CUTOFF`.",
    examples=[720],
)
RESCHEDULE_CUTOFF = Field(
    default=None,
    description="The learner may reschedule until this many minutes before the start. "
    "Null: the cancel cutoff.",
    examples=[1440],
)
PER_DAY = Field(
    default=None,
    description="At most this many sessions a day (midnight to midnight on the "
    "consultant's clock); holds awaiting confirmation count. Null: no cap.",
    examples=[3],
)
PER_WEEK = Field(
    default=None,
    description="At most this many sessions a week (Monday to Sunday on the consultant's "
    "clock); holds awaiting confirmation count. Null: no cap.",
    examples=[12],
)


class ServiceTypePolicy(BaseModel):
    """A service type's scheduling policy, in its create and change bodies."""

    buffer_before_minutes: BufferMinutes | None = BUFFER_BEFORE
    buffer_after_minutes: BufferMinutes | None = BUFFER_AFTER
    minimum_notice_minutes: AheadMinutes | None = MINIMUM_NOTICE
    booking_horizon_days: HorizonDays | None = BOOKING_HORIZON
    cancel_cutoff_minutes: AheadMinutes | None = CANCEL_CUTOFF
    reschedule_cutoff_minutes: AheadMinutes | None = RESCHEDULE_CUTOFF


class SessionCaps(BaseModel):
    """At most so many sessions a day and a week."""

    max_sessions_per_day: SessionsPerDay | None = PER_DAY
    max_sessions_per_week: SessionsPerWeek | None = PER_WEEK


class ConsultantPolicy(SessionCaps):
    """A consultant's own buffers and caps (of any type), in their profile's bodies."""

    buffer_before_minutes: BufferMinutes | None = BUFFER_BEFORE
    buffer_after_minutes: BufferMinutes | None = BUFFER_AFTER
