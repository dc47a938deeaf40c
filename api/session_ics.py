"""Sessions as iCalendar (RFC 5545, with RFC 7986's calendar properties), built with the
``icalendar`` library: one VEVENT per session.

What keeps a calendar app's copy right:

- ``UID`` is ``<session id>@<BOOKING_CALENDAR_UID_DOMAIN>``, the same in every feed
  and download, so an app that stored the event recognises it again;
- ``SEQUENCE`` is the session's ``calendar_sequence`` (one up on every reschedule and
  on the cancel), so the app replaces its copy with the newer one;
- ``STATUS`` is ``CONFIRMED`` while the session is booked or took place, ``CANCELLED``
  after a cancel (then also ``TRANSP:TRANSPARENT``: it no longer makes anyone busy);
- ``DTSTART``/``DTEND`` are UTC, which every app converts to its user's zone
  correctly (no VTIMEZONE to get wrong, no floating times);
- the join link (``URL`` and ``LOCATION``) is in the calendars of the session's
  parties only, and only while the session is not cancelled.

``SUMMARY`` names the service type and the other party: the consultant by their
display name (else ``consultant <short id>``), the learner by ``learner <short id>``
(the service knows no learner names), as the Temporal UI's summaries do.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import Any

from icalendar import Calendar, Event, vDuration
from starlette.responses import Response

from core.vocabulary import SessionStatus
from db.session_calendar import CalendarEntry
from workflows.presentation import short_id

CALENDAR_MEDIA_TYPE = "text/calendar; charset=utf-8"
PRODID = "-//Booking & Consultation Service//Sessions 1.0//EN"

CANCELLED_STATUSES = frozenset(
    {
        SessionStatus.CANCELLED_BY_USER,
        SessionStatus.CANCELLED_BY_CONSULTANT,
        SessionStatus.CANCELLED,
    }
)


class Viewer(StrEnum):
    """Whose calendar the events go into: a party of the sessions, or an operator."""

    LEARNER = "learner"
    CONSULTANT = "consultant"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class CalendarOptions:
    uid_domain: str
    # Asked of subscribing apps (REFRESH-INTERVAL, X-PUBLISHED-TTL); None in a download.
    refresh_interval: timedelta | None = None


def event_uid(session_id: uuid.UUID, uid_domain: str) -> str:
    return f"{session_id}@{uid_domain}"


def summary(entry: CalendarEntry, viewer: Viewer) -> str:
    consultant = entry.consultant_name or f"consultant {short_id(entry.consultant_id)}"
    learner = f"learner {short_id(entry.requester_id)}"
    if viewer is Viewer.LEARNER:
        return f"{entry.service_name} with {consultant}"
    if viewer is Viewer.CONSULTANT:
        return f"{entry.service_name} with {learner}"
    return f"{entry.service_name}: {consultant} and {learner}"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _event(
    entry: CalendarEntry, viewer: Viewer, options: CalendarOptions, stamp: datetime
) -> Event:
    cancelled = entry.status in CANCELLED_STATUSES
    event = Event()
    event.add("uid", event_uid(entry.session_id, options.uid_domain))
    event.add("dtstamp", stamp)
    event.add("dtstart", _utc(entry.start))
    event.add("dtend", _utc(entry.end))
    event.add("created", _utc(entry.created_at))
    event.add("last-modified", _utc(entry.updated_at))
    event.add("sequence", entry.sequence)
    event.add("summary", summary(entry, viewer))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if cancelled else "OPAQUE")
    if entry.join_url and not cancelled and viewer is not Viewer.OPERATOR:
        event.add("url", entry.join_url)
        event.add("location", entry.join_url)
    return event


def calendar_document(
    entries: Sequence[CalendarEntry],
    viewer: Viewer,
    *,
    name: str,
    options: CalendarOptions,
    now: datetime,
) -> bytes:
    """The VCALENDAR of ``entries`` as ``viewer`` sees them, serialised (CRLF lines,
    folded at 75 octets, UTF-8). ``now`` is every event's DTSTAMP."""
    stamp = _utc(now)
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.calendar_name = name  # NAME and X-WR-CALNAME
    if options.refresh_interval is not None:
        calendar.add("refresh-interval", options.refresh_interval, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", vDuration(options.refresh_interval))
    for entry in entries:
        calendar.add_component(_event(entry, viewer, options, stamp))
    document: bytes = calendar.to_ical()
    return document


def fingerprint(
    entries: Sequence[CalendarEntry], viewer: Viewer, *, name: str, options: CalendarOptions
) -> str:
    """An entity tag of the document: it changes whenever anything the document shows
    changes (a session moved, renamed, cancelled, added or out of the window), and
    only then; DTSTAMP alone does not count. Weak, because DTSTAMP differs between
    two equal documents."""
    digest = hashlib.sha256()
    digest.update(repr((PRODID, viewer.value, name, options)).encode())
    for entry in entries:
        digest.update(repr(tuple(entry)).encode())
    return f'W/"{digest.hexdigest()[:40]}"'


def matches_any(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, RFC 9110
    13.1.2) or is ``*``."""
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


def calendar_response(
    entries: Sequence[CalendarEntry],
    viewer: Viewer,
    *,
    name: str,
    options: CalendarOptions,
    if_none_match: str | None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``200`` with the document, or ``304`` without one when the client's copy (its
    ``If-None-Match``) is current: an app polling an unchanged feed costs a query and
    a hash, not a document."""
    etag = fingerprint(entries, viewer, name=name, options=options)
    cache = {
        "ETag": etag,
        # Each client keeps its own copy and asks again each time (join links inside).
        "Cache-Control": "private, no-cache",
        **(headers or {}),
    }
    if entries:
        cache["Last-Modified"] = format_datetime(
            max(entry.updated_at for entry in entries).astimezone(UTC), usegmt=True
        )
    if matches_any(if_none_match, etag):
        return Response(status_code=304, headers=cache)
    body = calendar_document(entries, viewer, name=name, options=options, now=datetime.now(UTC))
    return Response(body, media_type=CALENDAR_MEDIA_TYPE, headers=cache)


CALENDAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An iCalendar document (RFC 5545), one VEVENT per session.",
        "content": {"text/calendar": {"schema": {"type": "string"}}},
        "headers": {
            "ETag": {
                "description": "Send it back as `If-None-Match` for a 304 while unchanged.",
                "schema": {"type": "string"},
            },
            "Last-Modified": {
                "description": "When the latest of its sessions last changed.",
                "schema": {"type": "string"},
            },
        },
    },
    304: {"description": "Not modified: the `If-None-Match` copy is current."},
}
