"""Request and response bodies for consultation service types."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from api.schemas import policies
from api.schemas.consultants import Specialization
from api.schemas.fields import JsonBool, JsonInt, StorableText

NAME = Field(min_length=1, max_length=200, examples=["Career coaching"])
DURATION = Field(gt=0, le=24 * 60, description="Length of a session in minutes.", examples=[45])
SPECIALIZATION = Field(
    default=None,
    description="Only consultants with this specialization are assigned.",
    examples=["careers"],
)
START_INTERVAL = Field(
    default=None,
    ge=5,
    le=240,
    description="Offered starts are this many minutes apart, counted from midnight on "
    "the consultant's clock (15: 09:00, 09:15, …). Null: the service-wide default "
    "(`BOOKING_DEFAULT_START_INTERVAL`, 15 minutes).",
    examples=[30],
)
CONFIRMATION_TIMEOUT = Field(
    default=None,
    gt=0,
    le=30 * 24 * 3600,
    description="Overrides the service-wide confirmation timeout, in seconds.",
    examples=[3600],
)


class ServiceTypeCreate(policies.ServiceTypePolicy):
    model_config = ConfigDict(extra="forbid")

    name: StorableText = NAME
    description: StorableText | None = Field(default=None, max_length=5000)
    default_duration_minutes: JsonInt = DURATION
    is_active: JsonBool = True
    required_specialization: Specialization | None = SPECIALIZATION
    confirmation_timeout_seconds: JsonInt | None = CONFIRMATION_TIMEOUT
    start_interval_minutes: JsonInt | None = START_INTERVAL


class ServiceTypePatch(policies.ServiceTypePolicy):
    """Only the fields present are changed; ``null`` clears a nullable field (the
    others cannot be null, so their schema omits it; an explicit null is a 422)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[StorableText, Field(min_length=1, max_length=200)] | SkipJsonSchema[None] = None
    description: StorableText | None = Field(default=None, max_length=5000)
    default_duration_minutes: Annotated[JsonInt, Field(gt=0, le=24 * 60)] | SkipJsonSchema[None] = (
        None
    )
    is_active: JsonBool | SkipJsonSchema[None] = None
    required_specialization: Specialization | None = SPECIALIZATION
    confirmation_timeout_seconds: JsonInt | None = CONFIRMATION_TIMEOUT
    start_interval_minutes: JsonInt | None = START_INTERVAL


class ServiceTypeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    default_duration_minutes: int
    is_active: bool
    required_specialization: str | None
    confirmation_timeout_seconds: int | None
    start_interval_minutes: int | None = Field(
        description="Minutes between offered starts; null: the service-wide default."
    )
    buffer_before_minutes: int | None = Field(description="Null: no buffer.")
    buffer_after_minutes: int | None = Field(description="Null: no buffer.")
    minimum_notice_minutes: int | None = Field(description="Null: the service-wide notice.")
    booking_horizon_days: int | None = Field(description="Null: no horizon.")
    cancel_cutoff_minutes: int | None = Field(description="Null: the service-wide cutoff.")
    reschedule_cutoff_minutes: int | None = Field(description="Null: the cancel cutoff.")
    created_at: datetime
    updated_at: datetime
