"""Request and response bodies for consultant profiles."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema

from api.schemas import policies
from api.schemas.fields import JsonBool, StorableText, storable_text
from db.availability.recurrence import load_zone


def _known_time_zone(name: str) -> str:
    # load_zone also refuses directories ("Europe") and unreadable keys, not only unknown ones.
    if load_zone(name) is None:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)")
    return name


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_time_zone),
]
Specialization = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=100),
    AfterValidator(storable_text),
]
SPECIALIZATIONS = Field(max_length=50, examples=[["careers", "python"]])


class ConsultantProfileIn(policies.ConsultantPolicy):
    """A whole profile (PUT); the consultant's identity itself lives in IAM."""

    model_config = ConfigDict(extra="forbid")

    display_name: StorableText | None = Field(
        default=None, max_length=200, examples=["Dr. Ada Byron"]
    )
    bio: StorableText | None = Field(default=None, max_length=5000)
    specializations: list[Specialization] = Field(default_factory=list, max_length=50)
    is_available_for_booking: JsonBool = True
    time_zone: TimeZoneName = Field(
        default="UTC",
        description="IANA zone in which recurring availability is expanded.",
        examples=["Europe/Berlin"],
    )


class ConsultantProfilePatch(policies.ConsultantPolicy):
    """Only the fields present are changed; ``null`` clears ``display_name`` or ``bio``
    (the others cannot be null, so their schema omits it; an explicit null is a 422)."""

    model_config = ConfigDict(extra="forbid")

    display_name: StorableText | None = Field(default=None, max_length=200)
    bio: StorableText | None = Field(default=None, max_length=5000)
    specializations: (
        Annotated[list[Specialization], Field(max_length=50)] | SkipJsonSchema[None]
    ) = None
    is_available_for_booking: JsonBool | SkipJsonSchema[None] = None
    time_zone: TimeZoneName | SkipJsonSchema[None] = None


class ConsultantProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    consultant_user_id: uuid.UUID
    display_name: str | None
    bio: str | None
    specializations: list[str]
    is_available_for_booking: bool
    time_zone: str
    buffer_before_minutes: int | None = Field(description="Null: no buffer of their own.")
    buffer_after_minutes: int | None = Field(description="Null: no buffer of their own.")
    max_sessions_per_day: int | None = Field(description="Of any type; null: no cap.")
    max_sessions_per_week: int | None = Field(description="Of any type; null: no cap.")
    created_at: datetime
    updated_at: datetime


class ServiceLimitIn(policies.SessionCaps):
    """A consultant's caps on sessions of one service type (besides those of any type)."""

    model_config = ConfigDict(extra="forbid")


class ServiceLimitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    consultant_user_id: uuid.UUID
    consultation_service_type_id: uuid.UUID
    max_sessions_per_day: int | None
    max_sessions_per_week: int | None
    created_at: datetime
    updated_at: datetime
