"""Busy time from iCalendar data: the events of a window, expanded and merged.

The field's libraries do the reading: ``icalendar`` parses (VTIMEZONE included),
``x_wr_timezone`` turns a calendar that names its zone only in ``X-WR-TIMEZONE`` (what
Google exports) into one with real zones, and ``recurring_ical_events`` expands RRULE,
RDATE and EXDATE and applies RECURRENCE-ID overrides. What is left to decide here is
what is busy, and when that is in UTC:

- an event marked ``TRANSP:TRANSPARENT`` ("free" in calendar apps) and a cancelled
  one (``STATUS:CANCELLED``, also as the override of one occurrence) are not busy;
- an all-day event is busy from midnight to midnight on the consultant's clock;
- a floating time (no zone) is read on the consultant's clock, as their calendar app
  shows it to them;
- an event without an end and with a start time lasts no time, so blocks nothing.

Only start and end are kept: titles, places and attendees never leave this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone

MAX_SOURCE_KEY = 1000
FREE_TRANSPARENCY = "TRANSPARENT"
CANCELLED = "CANCELLED"
WINDOW_MARGIN = timedelta(days=1)
"""Expansion asks for a day more on each side (all-day and floating events sit on
the consultant's clock), then cuts to the window exactly."""


class UnreadableCalendar(ValueError):
    """The data is not iCalendar this service can read. The message names the kind
    of problem only, never the data (which would be someone's event)."""


@dataclass(frozen=True, order=True, slots=True)
class Busy:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Window:
    """The time busy intervals are kept for, ``[start, end)``, and the consultant's
    zone that all-day and floating events are read in."""

    start: datetime
    end: datetime
    zone: ZoneInfo


def parse(data: bytes | str) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except (ValueError, KeyError, IndexError, TypeError) as error:
        raise UnreadableCalendar(f"not valid iCalendar ({type(error).__name__})") from None
    if not isinstance(calendar, icalendar.Calendar):
        raise UnreadableCalendar("not valid iCalendar (no VCALENDAR)")
    return calendar


def busy_by_uid(calendar: icalendar.Calendar, window: Window) -> dict[str, list[Busy]]:
    """The merged busy intervals of each event UID within the window."""
    try:
        standard = x_wr_timezone.to_standard(calendar)
        query = recurring_ical_events.of(standard, components=("VEVENT",))
        occurrences = list(
            query.between(
                (window.start - WINDOW_MARGIN).astimezone(window.zone),
                (window.end + WINDOW_MARGIN).astimezone(window.zone),
            )
        )
    except (ValueError, KeyError, IndexError, TypeError, OverflowError, AttributeError) as error:
        raise UnreadableCalendar(f"an event cannot be expanded ({type(error).__name__})") from None
    found: dict[str, list[Busy]] = {}
    for event in occurrences:
        interval = _busy_interval(event, window)
        if interval is not None:
            found.setdefault(str(event.get("UID", "")), []).append(interval)
    return {uid: merged(intervals) for uid, intervals in found.items()}


def _busy_interval(event: icalendar.Event, window: Window) -> Busy | None:
    if str(event.get("TRANSP", "")).upper() == FREE_TRANSPARENCY:
        return None
    if str(event.get("STATUS", "")).upper() == CANCELLED:
        return None
    try:
        start, end = event.start, event.end
    except (ValueError, KeyError, TypeError) as error:
        raise UnreadableCalendar(f"an event has no usable times ({type(error).__name__})") from None
    start_utc, end_utc = _utc(start, window.zone), _utc(end, window.zone)
    start_utc, end_utc = max(start_utc, window.start), min(end_utc, window.end)
    if end_utc <= start_utc:
        return None
    return Busy(start_utc, end_utc)


def _utc(moment: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time(0), tzinfo=zone)  # an all-day event's day
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)  # floating: the consultant's clock
    return moment.astimezone(UTC)


def merged(intervals: Iterable[Busy]) -> list[Busy]:
    """Overlapping and touching intervals joined, in order."""
    result: list[Busy] = []
    for interval in sorted(intervals):
        if result and interval.start <= result[-1].end:
            if interval.end > result[-1].end:
                result[-1] = Busy(result[-1].start, interval.end)
        else:
            result.append(interval)
    return result


def source_key_of(name: str) -> str:
    """``name`` (a UID, an href) as a source key: itself, or its hash if very long."""
    if len(name) <= MAX_SOURCE_KEY:
        return name
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()
