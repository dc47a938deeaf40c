"""A meeting that gets a new link when its session moves is announced again."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.meetings import MeetingActivities
from tests.activities.builders import Backend
from tests.activities.test_meetings import http_platform, meeting_input
from tests.activities.test_sessions import booked


@pytest.fixture
def backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    return Backend(session_factory)


async def test_a_new_link_after_a_reschedule_is_a_new_meeting_ready_event(
    backend: Backend,
) -> None:
    request_id, session_id, _, _ = await booked(backend)

    def platform(request: httpx.Request) -> httpx.Response:
        # A moved meeting gets a new room (and link); moving it again keeps that one.
        room = "m-1" if request.method == "POST" else "m-2"
        return httpx.Response(200, json={"id": room, "join_url": f"https://p.test/j/{room}"})

    activities = MeetingActivities(backend.session_factory, http_platform(platform))
    await activities.create_meeting(meeting_input(request_id, session_id))
    moved = meeting_input(request_id, session_id, hour=14)
    await activities.reschedule_meeting(moved)
    await activities.reschedule_meeting(moved)  # a retry: the link is already the new one

    row = await backend.session_row(session_id)
    assert row.meeting_platform_join_url == "https://p.test/j/m-2"
    ready = [e for e in await backend.events(request_id) if e.event_type == "session.meeting_ready"]
    assert [e.payload["start"] for e in ready] == [
        meeting_input(request_id, session_id).start.isoformat(),
        moved.start.isoformat(),
    ]
    assert all(e.scheduled_session_id == session_id for e in ready)
    assert "p.test" not in json.dumps([e.payload for e in ready])


async def test_a_moved_meeting_that_keeps_its_link_is_not_announced_again(
    backend: Backend,
) -> None:
    request_id, session_id, _, _ = await booked(backend)

    def platform(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "m-1", "join_url": "https://p.test/j/m-1"})

    activities = MeetingActivities(backend.session_factory, http_platform(platform))
    await activities.create_meeting(meeting_input(request_id, session_id))
    await activities.reschedule_meeting(meeting_input(request_id, session_id, hour=14))

    types = await backend.event_types(request_id)
    assert types.count("session.meeting_ready") == 1
