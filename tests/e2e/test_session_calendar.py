"""A session through its life in its parties' calendars, end to end: booked, moved and
cancelled through the real workflow over HTTP, read from the learner's and the
consultant's feeds and as a single .ics, and stored as a CalDAV client stores
subscribed events, in a real Radicale server on loopback (each VEVENT PUT as its own
calendar object with the ``caldav`` client, then read back)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from caldav.davclient import DAVClient
from icalendar import Calendar

from tests.e2e.support import Actor, Service, days_ahead
from tests.support.caldav_server import CalDAVServer, running_caldav_server
from tests.support.calendars import SessionEvent, calendar_of, event_of, session_event, stored_form

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]


class CalDAVCalendar:
    """One calendar on the CalDAV server, driven as a client does (blocking calls in a
    thread: the worker shares this event loop)."""

    def __init__(self, server: CalDAVServer) -> None:
        self._client = DAVClient(
            url=server.principal_url, username=server.username, password=server.password
        )
        self._calendar: Any = None

    async def open(self, name: str) -> None:
        def make() -> Any:
            return self._client.principal().make_calendar(name=name)  # type: ignore[no-untyped-call]

        self._calendar = await asyncio.to_thread(make)

    async def store(self, document: bytes) -> None:
        """Every VEVENT of a fetched feed, each PUT as a calendar object of its own."""
        for event in Calendar.from_ical(document).events:
            # As published: the client's own edits would raise SEQUENCE, a mirror does not.
            await asyncio.to_thread(
                self._calendar.add_event, stored_form(event).decode(), increase_seqno=False
            )

    async def events(self) -> list[SessionEvent]:
        def read() -> list[bytes]:
            return [obj.data.encode() for obj in self._calendar.events()]

        stored = []
        for data in await asyncio.to_thread(read):
            (event,) = Calendar.from_ical(data).events
            stored.append(session_event(event))
        return stored


async def _feed_address(service: Service, actor: Actor, role: str) -> str:
    made = await service.http.post(
        f"/v1/{role}s/{actor.user_id}/calendar-feeds", headers=actor.headers
    )
    assert made.status_code == 201, made.text
    url = urlsplit(made.json()["url"])
    return f"{url.path}?{url.query}"


async def test_a_session_moved_and_cancelled_stays_one_event_everywhere(
    service: Service, tmp_path: Path
) -> None:
    service_type = await service.service_type(name=f"Career guidance {uuid.uuid4().hex[:6]}")
    consultant = await service.consultant()
    first_start = days_ahead(3)
    first = await service.slot(consultant, first_start, first_start + timedelta(hours=1))
    later = days_ahead(4, hour=15)
    second = await service.slot(consultant, later, later + timedelta(hours=1))
    learner = service.learner()
    session = await service.book(
        learner,
        consultant,
        {"service_type_id": service_type, "slot_id": first, "learner_time_zone": "Asia/Tokyo"},
    )
    join_url = session["join_url"]
    learner_feed = await _feed_address(service, learner, "learner")
    consultant_feed = await _feed_address(service, consultant, "consultant")
    single = f"/v1/sessions/{session['id']}/calendar.ics"

    async def in_feed(address: str) -> tuple[bytes, SessionEvent]:
        response = await service.http.get(address)
        _, (event,) = calendar_of(response)
        return response.content, event

    with running_caldav_server(tmp_path) as server:
        stored = CalDAVCalendar(server)
        await stored.open("Consultations")

        # Booked: SEQUENCE 0, confirmed, with the link, at the booked time.
        document, booked = await in_feed(learner_feed)
        assert booked.uid == f"{session['id']}@booking-service.dev"
        assert (booked.sequence, booked.status, booked.start) == (0, "CONFIRMED", first_start)
        assert booked.url == booked.location == join_url
        assert booked.start.isoformat() == session["start"].replace("Z", "+00:00")
        as_download = event_of(await service.http.get(single, headers=learner.headers))
        assert (as_download.uid, as_download.sequence) == (booked.uid, booked.sequence)
        await stored.store(document)
        (kept,) = await stored.events()
        assert (kept.uid, kept.sequence, kept.status, kept.url) == (
            booked.uid,
            0,
            "CONFIRMED",
            join_url,
        )

        # Moved by the learner, through the workflow: SEQUENCE 1, the new time.
        moved = await service.session_act(learner, session["id"], "reschedule", {"slot_id": second})
        assert moved.status_code == 200, moved.text
        document, rescheduled = await in_feed(learner_feed)
        assert (rescheduled.uid, rescheduled.sequence, rescheduled.start) == (booked.uid, 1, later)
        assert rescheduled.end == later + timedelta(hours=1)
        await stored.store(document)
        (kept,) = await stored.events()  # replaced, not added: the same UID
        assert (kept.uid, kept.sequence, kept.start, kept.status) == (
            booked.uid,
            1,
            later,
            "CONFIRMED",
        )

        # Cancelled by the consultant: SEQUENCE 2, CANCELLED, the link gone.
        cancelled = await service.session_act(
            consultant, session["id"], "cancel", {"reason": "schedule_conflict"}
        )
        assert cancelled.status_code == 200, cancelled.text
        document, off = await in_feed(learner_feed)
        assert (off.uid, off.sequence, off.status) == (booked.uid, 2, "CANCELLED")
        assert (off.url, off.location) == (None, None)
        await stored.store(document)
        (kept,) = await stored.events()
        assert (kept.uid, kept.sequence, kept.status, kept.url) == (
            booked.uid,
            2,
            "CANCELLED",
            None,
        )

    # The consultant's calendar tells the same story about the same event.
    _, theirs = await in_feed(consultant_feed)
    assert (theirs.uid, theirs.sequence, theirs.status) == (booked.uid, 2, "CANCELLED")
    assert theirs.summary.endswith(f" with learner {str(learner.user_id)[:8]}")
    assert off.summary.endswith(f" with Consultant {consultant.user_id}")
