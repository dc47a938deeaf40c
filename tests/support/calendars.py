"""Reading the service's iCalendar output as a calendar app would: parsed with the
``icalendar`` library and checked against what RFC 5545 requires of a published
calendar and of each event, plus the service's own promises (UTC times, a
``SEQUENCE``, a status)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from icalendar import Calendar, Event

CRLF = b"\r\n"
MAX_LINE_OCTETS = 75
STATUSES = frozenset({"CONFIRMED", "CANCELLED"})


@dataclass(frozen=True)
class SessionEvent:
    """One VEVENT as the tests compare it."""

    uid: str
    sequence: int
    status: str
    start: datetime
    end: datetime
    summary: str
    url: str | None
    location: str | None
    transparency: str
    stamp: datetime

    @property
    def session_id(self) -> uuid.UUID:
        return uuid.UUID(self.uid.split("@", 1)[0])


def _utc(value: object) -> datetime:
    assert isinstance(value, datetime), value
    assert value.tzinfo is not None, value
    assert value.utcoffset() == timedelta(0), value
    return value.astimezone(UTC)


def session_event(event: Event) -> SessionEvent:
    for required in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "STATUS", "SUMMARY"):
        assert required in event, f"{required} missing from {event.to_ical()!r}"
    status = str(event["STATUS"])
    assert status in STATUSES, status
    start, end = _utc(event.decoded("DTSTART")), _utc(event.decoded("DTEND"))
    assert end > start
    return SessionEvent(
        uid=str(event["UID"]),
        sequence=int(str(event["SEQUENCE"])),
        status=status,
        start=start,
        end=end,
        summary=str(event["SUMMARY"]),
        url=str(event["URL"]) if "URL" in event else None,
        location=str(event["LOCATION"]) if "LOCATION" in event else None,
        transparency=str(event.get("TRANSP", "OPAQUE")),
        stamp=_utc(event.decoded("DTSTAMP")),
    )


def parse_calendar(document: bytes) -> tuple[Calendar, list[SessionEvent]]:
    """The calendar and its events, after checking the document is well formed: CRLF
    lines of at most 75 octets, PRODID/VERSION 2.0/METHOD:PUBLISH, every event valid."""
    assert document.endswith(CRLF)
    for line in document.split(CRLF)[:-1]:
        assert len(line) <= MAX_LINE_OCTETS, line
    calendar = Calendar.from_ical(document)
    calendar.validate()  # type: ignore[no-untyped-call]
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert "PRODID" in calendar
    assert "X-WR-CALNAME" in calendar
    events = [session_event(event) for event in calendar.events]
    assert len({event.uid for event in events}) == len(events), "one event per session"
    return calendar, events


def calendar_of(response: httpx.Response) -> tuple[Calendar, list[SessionEvent]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return parse_calendar(response.content)


def event_of(response: httpx.Response) -> SessionEvent:
    _, events = calendar_of(response)
    (event,) = events
    return event


def stored_form(event: Event) -> bytes:
    """The event as a CalDAV client stores it: a calendar object of its own, without
    METHOD (RFC 4791 forbids it in stored objects)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Booking tests//CalDAV client//EN")
    calendar.add("version", "2.0")
    calendar.add_component(event)
    document: bytes = calendar.to_ical()
    return document
