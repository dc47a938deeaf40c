"""Request and response bodies for webhook subscriptions and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from api.schemas.fields import JsonBool, StorableText, storable_text
from core.events import EventType
from core.vocabulary import DeliveryStatus

MAX_URL_LENGTH = 2048


def _endpoint_url(value: str) -> str:
    """An absolute http(s) URL with a host, kept as given (no normalisation)."""
    storable_text(value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    if parts.scheme not in {"http", "https"}:
        raise ValueError("the URL must use http or https")
    if not parts.hostname:
        raise ValueError("the URL must name a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not allowed; the signature authenticates")
    if any(ch.isspace() for ch in value):
        raise ValueError("the URL must not contain whitespace")
    return value


EndpointUrl = Annotated[
    str,
    Field(min_length=1, max_length=MAX_URL_LENGTH, examples=["https://billing.example.com/hooks"]),
    AfterValidator(_endpoint_url),
]


def _distinct_sorted(values: list[EventType]) -> list[EventType]:
    return sorted(set(values))


EventTypeFilter = Annotated[
    list[EventType],
    Field(
        max_length=len(EventType),
        description="Event types to receive; empty means all of them.",
        examples=[["session.scheduled", "session.cancelled"]],
    ),
    AfterValidator(_distinct_sorted),
]
Description = Annotated[StorableText, Field(max_length=500)]


class WebhookSubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl
    event_types: EventTypeFilter = []
    description: Description | None = None
    is_enabled: JsonBool = True


class WebhookSubscriptionPatch(BaseModel):
    """Only the fields present are changed; ``null`` clears the description (the
    others cannot be null, so their schema omits it; an explicit null is a 422)."""

    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl | SkipJsonSchema[None] = None
    event_types: EventTypeFilter | SkipJsonSchema[None] = None
    description: Description | None = None
    is_enabled: JsonBool | SkipJsonSchema[None] = None


class WebhookSubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    is_enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookSubscriptionWithSecret(WebhookSubscriptionOut):
    """Returned on creation and rotation only: the secret is never shown again."""

    secret: str = Field(
        description="Verify deliveries with it (Standard Webhooks, `whsec_` + base64).",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )
    previous_secret_expires_at: datetime | None = Field(
        default=None,
        description="After a rotation: until then deliveries are signed with both secrets.",
    )


class WebhookDeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
