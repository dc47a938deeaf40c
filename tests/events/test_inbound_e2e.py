"""Signed meeting-platform events through ``POST /v1/webhooks/meeting-platform`` drive a
real session: the API with a real Temporal client, the workflow on the dev server,
the real activities on PostgreSQL.

The automatic no-show (a participant missing at start + grace) needs a session that
really starts, so it runs with the other timed paths in ``test_lifecycle_events``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from core.settings import Settings
from core.vocabulary import RequestStatus, SessionStatus
from db.models import ConsultationRequest, InboundWebhookEvent
from tests.activities.builders import Backend
from tests.events.harness import (
    ConsultationHandle,
    SessionFactory,
    api,
    details_when,
    dev_server,
    event_types,
    meeting_event,
    module_database,
    post_meeting_event,
    request_input,
    session_row,
    submit,
    team,
    wait_for_event,
    worker,
)
from tests.support.problems import assert_problem
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import ConfirmRequest

pytestmark = pytest.mark.e2e

BOOKED = [
    "consultation.requested",
    "consultation.assigned",
    "consultation.confirmation_requested",
    "session.scheduled",
    "session.meeting_ready",
]


@dataclass
class Service:
    client: Client
    task_queue: str
    sessions: SessionFactory
    http: httpx.AsyncClient


@pytest.fixture(scope="module")
async def service(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Service]:
    async with AsyncExitStack() as stack:
        sessions = await stack.enter_async_context(module_database(engine))
        env = await stack.enter_async_context(dev_server())
        task_queue = await stack.enter_async_context(worker(env.client, sessions, settings))
        http = await stack.enter_async_context(api(settings, env.client))
        yield Service(env.client, task_queue, sessions, http)


@dataclass
class Booked:
    handle: ConsultationHandle
    request_id: uuid.UUID
    session_id: uuid.UUID
    meeting_id: str


async def book(service: Service) -> Booked:
    """A confirmed session tomorrow with its meeting created."""
    backend = Backend(service.sessions)
    crew = await team(backend, 1)
    [consultant] = crew.consultants
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    await backend.slot(consultant, start)
    now = datetime.now(UTC)
    request = request_input(crew, window_start=now, window_end=start + timedelta(hours=2))
    handle = await submit(service.client, request, service.task_queue)
    await details_when(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
    await handle.execute_update(
        ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=consultant)
    )
    ready = await details_when(handle, lambda d: d.meeting_ready)
    assert ready.session_id is not None
    row = await session_row(service.sessions, ready.session_id)
    assert row.meeting_platform_session_id
    return Booked(handle, request.request_id, ready.session_id, row.meeting_platform_session_id)


async def signals(handle: ConsultationHandle) -> int:
    """How many signals the workflow was sent (each is a history event)."""
    signalled = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    kinds = [event.event_type async for event in handle.fetch_history_events()]
    return kinds.count(signalled)


async def recorded(service: Service, session_id: uuid.UUID) -> int:
    async with service.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(InboundWebhookEvent)
            .where(InboundWebhookEvent.scheduled_session_id == session_id)
        )
    return count or 0


async def session_status(service: Service, session_id: uuid.UUID) -> str:
    return (await session_row(service.sessions, session_id)).status


async def test_started_and_ended_events_move_the_session(service: Service) -> None:
    booked = await book(service)
    started = meeting_event("meeting.started", booked.meeting_id)
    response = await post_meeting_event(service.http, started)
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "accepted", "reason": None}
    await wait_for_event(service.sessions, booked.request_id, "session.started")
    assert await session_status(service, booked.session_id) == "in_progress"

    for role in ("learner", "consultant"):
        joined = meeting_event("participant.joined", booked.meeting_id, role=role)
        assert (await post_meeting_event(service.http, joined)).status_code == 202
    ended = meeting_event("meeting.ended", booked.meeting_id)
    assert (await post_meeting_event(service.http, ended)).status_code == 202
    completed = await wait_for_event(service.sessions, booked.request_id, "session.completed")

    row = await session_row(service.sessions, booked.session_id)
    assert row.status == SessionStatus.COMPLETED.value
    assert row.actual_start_time == datetime.fromisoformat(started["occurred_at"])
    assert row.actual_end_time == datetime.fromisoformat(ended["occurred_at"])
    assert row.learner_joined_at is not None
    assert row.consultant_joined_at is not None
    async with service.sessions() as session:
        request = await session.get(ConsultationRequest, booked.request_id)
    assert request is not None
    assert request.status == RequestStatus.COMPLETED.value
    assert datetime.fromisoformat(completed.payload["at"]) == row.actual_end_time
    assert await event_types(service.sessions, booked.request_id) == [
        *BOOKED,
        "session.started",
        "session.completed",
    ]
    assert await signals(booked.handle) == 4
    assert await recorded(service, booked.session_id) == 4


async def test_forged_or_stale_events_are_refused_without_effect(service: Service) -> None:
    booked = await book(service)
    started = meeting_event("meeting.started", booked.meeting_id)

    forged = await post_meeting_event(service.http, started, secret="not-the-shared-secret")
    assert_problem(forged, 401)
    stale = await post_meeting_event(service.http, started, sent_at=time.time() - 600)
    assert "away from now" in assert_problem(stale, 401)["detail"]

    assert await signals(booked.handle) == 0
    assert await recorded(service, booked.session_id) == 0
    details = await booked.handle.query(ConsultationWorkflow.details)
    assert details.session_status is SessionStatus.SCHEDULED
    assert await session_status(service, booked.session_id) == "scheduled"
    assert await event_types(service.sessions, booked.request_id) == BOOKED

    # The same event, genuinely signed and fresh, is accepted: the refusals above
    # were about the signature, and left nothing behind that would block it.
    assert (await post_meeting_event(service.http, started)).status_code == 202
    await wait_for_event(service.sessions, booked.request_id, "session.started")


async def test_a_replayed_event_has_no_second_effect(service: Service) -> None:
    booked = await book(service)
    joined = meeting_event("participant.joined", booked.meeting_id, role="learner")
    first = await post_meeting_event(service.http, joined)
    assert first.json() == {"status": "accepted", "reason": None}

    # The platform sends it again (same id, signed afresh), and again.
    for _ in range(2):
        again = await post_meeting_event(service.http, joined)
        assert again.status_code == 200, again.text
        assert again.json() == {"status": "duplicate", "reason": None}
    assert await signals(booked.handle) == 1
    assert await recorded(service, booked.session_id) == 1

    # A different event with the same content but its own id is a new event.
    second = meeting_event("participant.joined", booked.meeting_id, role="learner")
    assert (await post_meeting_event(service.http, second)).status_code == 202
    assert await signals(booked.handle) == 2
    assert await event_types(service.sessions, booked.request_id) == BOOKED
