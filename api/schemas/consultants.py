"""Request and response bodies for consultant profiles."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints


def _known_time_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin)") from exc
    return name


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_time_zone),
]
Specialization = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=100)
]
SPECIALIZATIONS = Field(max_length=50, examples=[["careers", "python"]])


class ConsultantProfileIn(BaseModel):
    """A whole profile (PUT); the consultant's identity itself lives in IAM."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200, examples=["Dr. Ada Byron"])
    bio: str | None = Field(default=None, max_length=5000)
    specializations: list[Specialization] = Field(default_factory=list, max_length=50)
    is_available_for_booking: bool = True
    time_zone: TimeZoneName = Field(
        default="UTC",
        description="IANA zone in which recurring availability is expanded.",
        examples=["Europe/Berlin"],
    )


class ConsultantProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=200)
    bio: str | None = Field(default=None, max_length=5000)
    specializations: list[Specialization] | None = Field(default=None, max_length=50)
    is_available_for_booking: bool | None = None
    time_zone: TimeZoneName | None = None


class ConsultantProfileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    consultant_user_id: uuid.UUID
    display_name: str | None
    bio: str | None
    specializations: list[str]
    is_available_for_booking: bool
    time_zone: str
    created_at: datetime
    updated_at: datetime
