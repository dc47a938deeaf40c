"""Busy time from a real CalDAV server: Radicale on loopback, holding events written
with the ``caldav`` client as a calendar app would. The first sync reads everything;
later ones ask what changed (sync token, ctag) and replace only those objects' busy
time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from caldav.davclient import DAVClient
from sqlalchemy import select

from activities.calendars import CalendarActivities
from core.vocabulary import CalendarSyncOutcome
from db.models import BusyInterval, ConsultantCalendar
from tests.calendars.support import SessionFactory, link, read, stored
from tests.support.caldav_server import CalDAVServer, running_caldav_server
from tests.support.tokens import TokenFactory

pytestmark = pytest.mark.usefixtures("clean_database")

WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Booking tests//EN
BEGIN:VEVENT
UID:review@example.test
DTSTAMP:20270201T120000Z
SUMMARY:Review
DTSTART;TZID=Europe/Berlin:20270302T160000
DTEND;TZID=Europe/Berlin:20270302T170000
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;TZID=Europe/Berlin:20270309T160000
END:VEVENT
BEGIN:VEVENT
UID:review@example.test
DTSTAMP:20270201T120000Z
RECURRENCE-ID;TZID=Europe/Berlin:20270316T160000
SUMMARY:Review (earlier)
DTSTART;TZID=Europe/Berlin:20270316T080000
DTEND;TZID=Europe/Berlin:20270316T090000
END:VEVENT
END:VCALENDAR
"""

HOLIDAY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Booking tests//EN
BEGIN:VEVENT
UID:holiday@example.test
DTSTAMP:20270201T120000Z
SUMMARY:Day off
DTSTART;VALUE=DATE:20270305
DTEND;VALUE=DATE:20270306
END:VEVENT
END:VCALENDAR
"""

FREE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Booking tests//EN
BEGIN:VEVENT
UID:free@example.test
DTSTAMP:20270201T120000Z
SUMMARY:Reading (free)
DTSTART:20270304T100000Z
DTEND:20270304T110000Z
TRANSP:TRANSPARENT
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def radicale(tmp_path: Path) -> Iterator[CalDAVServer]:
    with running_caldav_server(tmp_path) as server:
        yield server


@pytest.fixture
def work_calendar(radicale: CalDAVServer) -> Any:
    """A calendar of the consultant's, filled by a calendar app."""
    app: Any = DAVClient(
        url=radicale.principal_url, username=radicale.username, password=radicale.password
    )
    calendar = app.principal().make_calendar(name="Work")
    for data in (WEEKLY, HOLIDAY, FREE):
        calendar.add_event(data)
    return calendar


def _href(calendar: Any, uid: str) -> str:
    """The object's path, as the sync keys its busy time."""
    return unquote(str(calendar.get_event_by_uid(uid).url.path))


async def _interval_ids(sessions: SessionFactory, source: str) -> set[int]:
    async with sessions() as session:
        return set(
            (
                await session.scalars(
                    select(BusyInterval.id).where(BusyInterval.source_key == source)
                )
            ).all()
        )


async def test_caldav_sync_reads_everything_then_only_what_changed(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
    radicale: CalDAVServer,
    work_calendar: Any,
) -> None:
    linked = await link(
        client,
        tokens,
        consultant,
        str(work_calendar.url),
        kind="caldav",
        username=radicale.username,
        password=radicale.password,
        display_name="Work",
    )
    assert radicale.password not in str(linked)
    calendar_id = uuid.UUID(linked["id"])
    weekly, holiday = (
        _href(work_calendar, "review@example.test"),
        _href(work_calendar, "holiday@example.test"),
    )

    first = await calendar_activities.sync(calendar_id)

    assert first.outcome is CalendarSyncOutcome.UPDATED
    assert await stored(session_factory, calendar_id) == [
        (weekly, "2027-03-02 15:00", "2027-03-02 16:00"),
        (holiday, "2027-03-04 23:00", "2027-03-05 23:00"),
        # the 9th is an EXDATE; the 16th moved to 08:00 Berlin
        (weekly, "2027-03-16 07:00", "2027-03-16 08:00"),
        (weekly, "2027-03-23 15:00", "2027-03-23 16:00"),
    ]
    async with session_factory() as session:
        row = await session.get(ConsultantCalendar, calendar_id)
        assert row is not None
        assert row.sync_token  # Radicale offers both
        assert row.ctag
    holiday_rows = await _interval_ids(session_factory, holiday)

    # The calendar app adds one event and deletes another.
    work_calendar.add_event(
        dtstart=datetime(2027, 3, 8, 12, 0, tzinfo=UTC),
        dtend=datetime(2027, 3, 8, 13, 30, tzinfo=UTC),
        uid="lunch@example.test",
        summary="Lunch",
    )
    work_calendar.get_event_by_uid("review@example.test").delete()
    lunch = _href(work_calendar, "lunch@example.test")

    second = await calendar_activities.sync(calendar_id)

    assert second.outcome is CalendarSyncOutcome.UPDATED
    assert await stored(session_factory, calendar_id) == [
        (holiday, "2027-03-04 23:00", "2027-03-05 23:00"),
        (lunch, "2027-03-08 12:00", "2027-03-08 13:30"),
    ]
    # Incremental: the untouched object's rows were not rewritten.
    assert await _interval_ids(session_factory, holiday) == holiday_rows

    third = await calendar_activities.sync(calendar_id)
    assert third.outcome is CalendarSyncOutcome.UNCHANGED
    shown = await read(client, tokens, consultant, linked["id"])
    assert (shown["stale"], shown["busy_interval_count"]) == (False, 2)


async def test_a_wrong_password_makes_the_calendar_stale_with_a_clear_error(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
    radicale: CalDAVServer,
    work_calendar: Any,
) -> None:
    linked = await link(
        client,
        tokens,
        consultant,
        str(work_calendar.url),
        kind="caldav",
        username=radicale.username,
        password="not-the-password",
    )
    result = await calendar_activities.sync(uuid.UUID(linked["id"]))
    assert result.outcome is CalendarSyncOutcome.FAILED
    shown = await read(client, tokens, consultant, linked["id"])
    assert shown["stale"] is True
    assert shown["last_error"] == "the calendar server refused the username or password"
    assert "not-the-password" not in str(shown)
