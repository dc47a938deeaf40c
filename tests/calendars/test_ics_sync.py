"""Busy time from ICS addresses, fetched from a real HTTP server on loopback: the
exact intervals stored for recurring events (EXDATE, a moved occurrence), all-day,
floating, DST-crossing, transparent and cancelled events and a Google-style
X-WR-TIMEZONE export; conditional GETs; and failures that keep the last good set."""

from __future__ import annotations

import uuid

import httpx
import pytest

from activities.calendars import CalendarActivities
from core.vocabulary import CalendarSyncOutcome
from tests.calendars.support import (
    LAST_MODIFIED,
    IcsServer,
    Served,
    SessionFactory,
    feed,
    link,
    read,
    stored,
)
from tests.support.tokens import TokenFactory

pytestmark = pytest.mark.usefixtures("clean_database")

WEEK = "weekly-team-meeting@example.test"
BERLIN_WEEK = [
    # Mondays 10:00 Berlin: 09:00 UTC in winter; the 15th is an EXDATE, the 22nd moved
    # to Tuesday 14:00; the 29th is after the clock change (08:00 UTC).
    (WEEK, "2027-03-01 09:00", "2027-03-01 10:00"),
    (WEEK, "2027-03-08 09:00", "2027-03-08 10:00"),
    # All day on the consultant's (Berlin) clock: midnight to midnight CET.
    ("conference-day@example.test", "2027-03-09 23:00", "2027-03-10 23:00"),
    # Floating 12:00-13:00, read on the consultant's clock.
    ("floating-lunch@example.test", "2027-03-11 11:00", "2027-03-11 12:00"),
    (WEEK, "2027-03-23 13:00", "2027-03-23 14:00"),
    # 23:00 CET to 04:00 CEST: four hours, the clock jumped at 02:00.
    ("night-train@example.test", "2027-03-27 22:00", "2027-03-28 02:00"),
    (WEEK, "2027-03-29 08:00", "2027-03-29 09:00"),
]
# The transparent and the cancelled event, and the one before the window, are not busy.


async def test_a_calendar_with_every_kind_of_event_stores_exactly_its_busy_times(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
) -> None:
    ics_server.paths["/private-token-123/basic.ics"] = Served(feed("berlin_week.ics"))
    calendar = await link(
        client, tokens, consultant, ics_server.url("/private-token-123/basic.ics")
    )
    assert calendar["address_hint"] == ics_server.base_url + "/…"
    assert "private-token-123" not in str(calendar)

    result = await calendar_activities.sync(uuid.UUID(calendar["id"]))

    assert result.outcome is CalendarSyncOutcome.UPDATED
    assert result.busy_intervals == len(BERLIN_WEEK)
    assert await stored(session_factory, uuid.UUID(calendar["id"])) == BERLIN_WEEK
    shown = await read(client, tokens, consultant, calendar["id"])
    assert shown["busy_interval_count"] == len(BERLIN_WEEK)
    assert shown["stale"] is False
    assert shown["last_error"] is None
    assert shown["last_success_at"] is not None


async def test_a_google_export_reads_floating_times_in_its_x_wr_timezone(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
) -> None:
    ics_server.paths["/google.ics"] = Served(feed("google_export.ics"))
    calendar = await link(client, tokens, consultant, ics_server.url("/google.ics"))

    await calendar_activities.sync(uuid.UUID(calendar["id"]))

    # New York's clock (not the consultant's Berlin one): 09:00 EST is 14:00 UTC, and
    # after the US change on 14 March 09:00 EDT is 13:00 UTC.
    assert await stored(session_factory, uuid.UUID(calendar["id"])) == [
        ("standup-utc@google.com", "2027-03-03 14:00", "2027-03-03 15:00"),
        ("weekly-floating@google.com", "2027-03-10 14:00", "2027-03-10 14:30"),
        ("weekly-floating@google.com", "2027-03-17 13:00", "2027-03-17 13:30"),
    ]


async def test_an_unchanged_calendar_is_asked_conditionally_and_keeps_its_set(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
) -> None:
    served = Served(feed("berlin_week.ics"))
    ics_server.paths["/cal.ics"] = served
    calendar = await link(client, tokens, consultant, ics_server.url("/cal.ics"))
    calendar_id = uuid.UUID(calendar["id"])
    await calendar_activities.sync(calendar_id)

    again = await calendar_activities.sync(calendar_id)

    assert again.outcome is CalendarSyncOutcome.UNCHANGED
    first, second = [headers for path, headers in ics_server.requests if path == "/cal.ics"]
    assert "if-none-match" not in first
    assert second["if-none-match"] == served.etag
    assert second["if-modified-since"] == LAST_MODIFIED
    assert await stored(session_factory, calendar_id) == BERLIN_WEEK
    assert (await read(client, tokens, consultant, calendar["id"]))["stale"] is False


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (Served(b"upstream broke", status=500), "the calendar server answered HTTP 500"),
        (Served(b"<html>this is not a calendar</html>"), "the calendar cannot be read"),
        (Served(b"BEGIN:VCALENDAR\r\n" + b"X" * 70_000), "larger than 65536 bytes"),
    ],
    ids=["server-error", "malformed", "too-large"],
)
async def test_a_calendar_that_starts_failing_keeps_its_last_set_and_says_why(
    failure: Served,
    error: str,
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ics_server.paths["/cal.ics"] = Served(feed("berlin_week.ics"))
    calendar = await link(client, tokens, consultant, ics_server.url("/cal.ics"))
    calendar_id = uuid.UUID(calendar["id"])
    await calendar_activities.sync(calendar_id)
    good = await read(client, tokens, consultant, calendar["id"])

    ics_server.paths["/cal.ics"] = failure
    monkeypatch.setattr(
        calendar_activities,
        "_settings",
        calendar_activities._settings.model_copy(update={"calendar_max_response_bytes": 65536}),
    )
    failed = await calendar_activities.sync(calendar_id)
    failed_again = await calendar_activities.sync(calendar_id)

    assert failed.outcome is failed_again.outcome is CalendarSyncOutcome.FAILED
    assert await stored(session_factory, calendar_id) == BERLIN_WEEK
    shown = await read(client, tokens, consultant, calendar["id"])
    assert shown["stale"] is True
    assert error in shown["last_error"]
    assert "/cal.ics" not in shown["last_error"]
    assert shown["stale_since"] is not None
    assert shown["last_success_at"] == good["last_success_at"]
    assert shown["busy_interval_count"] == len(BERLIN_WEEK)

    ics_server.paths["/cal.ics"] = Served(feed("google_export.ics"))
    recovered = await calendar_activities.sync(calendar_id)
    assert recovered.outcome is CalendarSyncOutcome.UPDATED
    shown = await read(client, tokens, consultant, calendar["id"])
    assert (shown["stale"], shown["stale_since"], shown["last_error"]) == (False, None, None)
    assert shown["busy_interval_count"] == 3


async def test_syncing_twice_stores_the_same_set(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
) -> None:
    ics_server.paths["/cal.ics"] = Served(feed("berlin_week.ics"), validators=False)
    calendar = await link(client, tokens, consultant, ics_server.url("/cal.ics"))
    calendar_id = uuid.UUID(calendar["id"])
    for _ in range(2):
        result = await calendar_activities.sync(calendar_id)
        assert result.outcome is CalendarSyncOutcome.UPDATED
    assert await stored(session_factory, calendar_id) == BERLIN_WEEK


async def test_an_unlinked_calendar_is_gone_for_the_sync(
    client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: SessionFactory,
    ics_server: IcsServer,
    calendar_activities: CalendarActivities,
    consultant: uuid.UUID,
) -> None:
    ics_server.paths["/cal.ics"] = Served(feed("berlin_week.ics"))
    calendar = await link(client, tokens, consultant, ics_server.url("/cal.ics"))
    await calendar_activities.sync(uuid.UUID(calendar["id"]))
    response = await client.delete(
        f"/v1/consultants/{consultant}/calendars/{calendar['id']}",
        headers=tokens.headers("consultant", sub=consultant),
    )
    assert response.status_code == 204
    assert await stored(session_factory, uuid.UUID(calendar["id"])) == []
    result = await calendar_activities.sync(uuid.UUID(calendar["id"]))
    assert result.outcome is CalendarSyncOutcome.GONE
