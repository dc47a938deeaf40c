"""Request and response bodies for a consultant's linked calendars.

The address and the password are write-only: no response carries them (nor any log
line); ``address_hint`` is what may be shown of the address.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from api.schemas.fields import StorableText, storable_text
from core.vocabulary import CalendarKind
from db.models import ConsultantCalendar

Address = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(storable_text),
]
Username = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(storable_text)
]


class CalendarLink(BaseModel):
    """A calendar to link: an ICS address, or a CalDAV calendar with its credentials."""

    model_config = ConfigDict(extra="forbid")

    kind: CalendarKind = Field(
        description="`ics`: an iCalendar address fetched over HTTPS (Google's secret "
        "address, Outlook's published ICS link, Apple's public calendar link); `caldav`: "
        "a CalDAV calendar collection (Nextcloud, iCloud, Fastmail, Radicale), with "
        "`username` and an app password.",
        examples=["ics"],
    )
    url: Address = Field(
        description="The calendar's address (`https://` or `webcal://`). Stored encrypted "
        "and never returned: secret addresses carry their access token.",
        examples=[
            "https://calendar.google.com/calendar/ical/ada%40example.com/private-0123/basic.ics"
        ],
    )
    username: Username | None = Field(
        default=None,
        description="For CalDAV (or an ICS address behind HTTP basic authentication).",
        examples=["ada"],
    )
    password: SecretStr | None = Field(
        default=None,
        max_length=500,
        description="An app password for CalDAV; stored encrypted, never returned.",
    )
    display_name: StorableText | None = Field(
        default=None,
        max_length=200,
        description="A name to tell calendars apart.",
        examples=["Work"],
    )


class CalendarOut(BaseModel):
    """A linked calendar and how its sync is going. No address, no password."""

    id: uuid.UUID
    consultant_id: uuid.UUID
    kind: CalendarKind
    display_name: str | None
    address_hint: str = Field(
        description="Scheme and host of the address, the rest elided.",
        examples=["https://calendar.google.com/…"],
    )
    username: str | None
    created_at: datetime
    last_attempt_at: datetime | None = Field(description="When a sync last tried it.")
    last_success_at: datetime | None = Field(
        description="When a sync last read it (a 304 or an unchanged ctag counts)."
    )
    stale: bool = Field(
        description="The last sync failed: its busy time is the last good set, kept "
        "until a sync succeeds (`BOOKING_CALENDAR_STALE_BLOCKS_BOOKING` decides whether "
        "a stale calendar also blocks the consultant's bookings)."
    )
    stale_since: datetime | None = Field(description="The first failure in a row.")
    last_error: str | None = Field(
        description="Why the last sync failed (never the address).",
        examples=["the calendar server answered HTTP 500"],
    )
    busy_interval_count: int = Field(description="Busy times stored from it, in the horizon.")

    @classmethod
    def of(cls, calendar: ConsultantCalendar) -> CalendarOut:
        return cls(
            id=calendar.id,
            consultant_id=calendar.consultant_user_id,
            kind=CalendarKind(calendar.kind),
            display_name=calendar.display_name,
            address_hint=calendar.address_hint,
            username=calendar.username,
            created_at=calendar.created_at,
            last_attempt_at=calendar.last_attempt_at,
            last_success_at=calendar.last_success_at,
            stale=calendar.stale_since is not None,
            stale_since=calendar.stale_since,
            last_error=calendar.last_error,
            busy_interval_count=calendar.busy_interval_count,
        )


class SyncAccepted(BaseModel):
    calendar_id: uuid.UUID
    status: str = Field(
        default="accepted",
        description="The consultant's sync was asked to fetch this calendar now; read "
        "the calendar for the result.",
    )
