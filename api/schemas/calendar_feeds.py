"""Private calendar feeds as the API shows them: never the token, except once in the
answer that made the feed."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from core.vocabulary import ParticipantRole

_EXAMPLE: JsonDict = {
    "id": "0b6f3c1e-7a2d-4f0e-9c1b-5d8e2a4f6c10",
    "owner_role": "learner",
    "owner_id": "11111111-1111-4111-8111-111111111111",
    "created_at": "2026-12-03T10:00:00Z",
    "revoked_at": None,
}
_TOKEN = "Yl3m0Q2oJxV8c1Zr5kq9TtB7wN4sHfA6dGuEiPyLhRo"  # noqa: S105  (an example)
_URL = f"http://127.0.0.1:8000/v1/calendar-feeds/{_EXAMPLE['id']}/calendar.ics?token={_TOKEN}"


class CalendarFeedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_EXAMPLE]})

    id: uuid.UUID
    owner_role: ParticipantRole = Field(
        description="Whose sessions: the person's as `learner` or as `consultant`."
    )
    owner_id: uuid.UUID = Field(
        validation_alias="owner_user_id", description="The person whose sessions it holds."
    )
    created_at: datetime
    revoked_at: datetime | None = Field(
        description="When it was revoked (it serves nothing since); null while it works."
    )


class CalendarFeedCreated(CalendarFeedOut):
    """The new feed with its subscription address, shown this once: the service keeps
    only a hash of the token."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    **_EXAMPLE,
                    "token": _TOKEN,
                    "url": _URL,
                    "webcal_url": _URL.replace("http://", "webcal://", 1),
                }
            ]
        },
    )

    token: str = Field(description="The feed's secret; whoever has it reads the feed.")
    url: str = Field(
        description="The address to subscribe to (Google Calendar: From URL; Outlook: "
        "Subscribe from web; Apple Calendar: New Calendar Subscription)."
    )
    webcal_url: str = Field(
        description="The same address with the `webcal://` scheme, which opens the "
        "subscription dialog of the calendar app on most systems."
    )
