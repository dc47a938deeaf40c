"""The meeting activities with both providers (HTTP against a mock transport)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import replace

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.meetings import PLATFORM_UNAVAILABLE, MeetingActivities
from core.vocabulary import CancellationReason, ErrorType, Party, SessionStatus, StatusReason
from integrations.meetings.http import HttpMeetingPlatform
from integrations.meetings.room_link import RoomLinkPlatform
from tests.activities.builders import Backend, future
from tests.activities.test_sessions import booked
from workflows.contracts.activity_io import CancelSessionInput, MeetingInput, MeetingRef

BASE = "https://meet.example.test"


def meeting_input(request_id: uuid.UUID, session_id: uuid.UUID, hour: int = 10) -> MeetingInput:
    start = future(hour=hour)
    return MeetingInput(
        request_id=request_id, session_id=session_id, start=start, end=start.replace(hour=hour + 1)
    )


def http_platform(
    handler: Callable[[httpx.Request], httpx.Response],
) -> HttpMeetingPlatform:
    return HttpMeetingPlatform(
        "https://platform.example.test/api",
        token="platform-token",
        timeout=5,
        transport=httpx.MockTransport(handler),
    )


async def test_a_room_link_is_unguessable_stored_once_and_announced(backend: Backend) -> None:
    request_id, session_id, _, _ = await booked(backend)
    activities = MeetingActivities(backend.session_factory, RoomLinkPlatform(BASE))

    created = await activities.create_meeting(meeting_input(request_id, session_id))
    link = (await backend.session_row(session_id)).meeting_platform_join_url
    await activities.create_meeting(meeting_input(request_id, session_id))

    assert not created.reports_attendance
    assert link is not None
    assert link.startswith(f"{BASE}/")
    assert len(link.removeprefix(f"{BASE}/")) >= 32
    assert (await backend.session_row(session_id)).meeting_platform_join_url == link
    ready = [e for e in await backend.events(request_id) if e.event_type == "session.meeting_ready"]
    assert len(ready) == 1
    assert link not in json.dumps(ready[0].payload)


async def test_the_http_platform_gets_idempotent_authenticated_calls(backend: Backend) -> None:
    request_id, session_id, _, _ = await booked(backend)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "DELETE":
            return httpx.Response(404)
        return httpx.Response(201, json={"id": "m-1", "join_url": "https://p.test/j/m-1"})

    activities = MeetingActivities(backend.session_factory, http_platform(handler))
    created = await activities.create_meeting(meeting_input(request_id, session_id))
    await activities.reschedule_meeting(meeting_input(request_id, session_id, hour=14))
    await activities.cancel_meeting(MeetingRef(request_id=request_id, session_id=session_id))

    assert created.reports_attendance
    session = await backend.session_row(session_id)
    assert (session.meeting_platform_session_id, session.meeting_platform_join_url) == (
        "m-1",
        "https://p.test/j/m-1",
    )
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", "/api/meetings"),
        ("PATCH", "/api/meetings/m-1"),
        ("DELETE", "/api/meetings/m-1"),
    ]
    assert seen[0].headers["Idempotency-Key"] == str(session_id)
    assert seen[0].headers["Authorization"] == "Bearer platform-token"
    assert json.loads(seen[0].content)["external_id"] == str(session_id)


@pytest.mark.parametrize(
    ("status", "error_type", "non_retryable"),
    [
        (503, PLATFORM_UNAVAILABLE, False),
        (429, PLATFORM_UNAVAILABLE, False),
        (422, ErrorType.MEETING_PLATFORM_REJECTED.value, True),
    ],
)
async def test_platform_failures_are_classified(
    backend: Backend, status: int, error_type: str, non_retryable: bool
) -> None:
    request_id, session_id, _, _ = await booked(backend)
    activities = MeetingActivities(
        backend.session_factory, http_platform(lambda request: httpx.Response(status))
    )

    with pytest.raises(ApplicationError) as failed:
        await activities.create_meeting(meeting_input(request_id, session_id))

    assert failed.value.type == error_type
    assert failed.value.non_retryable is non_retryable
    assert (await backend.session_row(session_id)).meeting_platform_join_url is None


async def test_an_unreachable_platform_is_transient(backend: Backend) -> None:
    request_id, session_id, _, _ = await booked(backend)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    activities = MeetingActivities(backend.session_factory, http_platform(refuse))
    with pytest.raises(ApplicationError) as failed:
        await activities.create_meeting(meeting_input(request_id, session_id))
    assert failed.value.type == PLATFORM_UNAVAILABLE
    assert not failed.value.non_retryable


async def test_a_failing_create_with_a_deadline_announces_the_late_meeting_once(
    backend: Backend,
) -> None:
    request_id, session_id, _, _ = await booked(backend)
    activities = MeetingActivities(
        backend.session_factory, http_platform(lambda request: httpx.Response(503))
    )
    deadline = future(hour=9, days=3)
    retried = replace(meeting_input(request_id, session_id), deadline=deadline)

    for _ in range(2):  # two failed attempts of the same call
        with pytest.raises(ApplicationError):
            await activities.create_meeting(retried)

    pending = [
        e for e in await backend.events(request_id) if e.event_type == "session.meeting_pending"
    ]
    assert len(pending) == 1
    assert pending[0].scheduled_session_id == session_id
    assert pending[0].payload == {
        "start": retried.start.isoformat(),
        "end": retried.end.isoformat(),
        "deadline": deadline.isoformat(),
    }


async def test_a_call_with_a_fixed_budget_announces_nothing(backend: Backend) -> None:
    request_id, session_id, _, _ = await booked(backend)
    activities = MeetingActivities(
        backend.session_factory, http_platform(lambda request: httpx.Response(503))
    )
    with pytest.raises(ApplicationError):
        await activities.create_meeting(meeting_input(request_id, session_id))
    assert "session.meeting_pending" not in await backend.event_types(request_id)


async def test_a_room_made_for_a_session_cancelled_meanwhile_is_cancelled_again(
    backend: Backend,
) -> None:
    request_id, session_id, consultant, _ = await booked(backend)
    await backend.sessions.cancel_session(
        CancelSessionInput(
            request_id=request_id,
            session_id=session_id,
            party=Party.CONSULTANT,
            actor_id=consultant,
            reason=CancellationReason.ILLNESS,
            session_status=SessionStatus.CANCELLED_BY_CONSULTANT,
            status_reason=StatusReason.CANCELLED_BY_CONSULTANT,
        )
    )
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if request.method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(201, json={"id": "m-1", "join_url": "https://p.test/j/m-1"})

    activities = MeetingActivities(backend.session_factory, http_platform(handler))
    await activities.create_meeting(meeting_input(request_id, session_id))

    assert seen == ["POST", "DELETE"]
    assert (await backend.session_row(session_id)).meeting_platform_join_url is None
    assert "session.meeting_ready" not in await backend.event_types(request_id)
