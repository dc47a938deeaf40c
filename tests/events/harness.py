"""The whole service for end-to-end event tests: a Temporal dev server, workers running
the real activities on PostgreSQL, the API with a real Temporal client, a catalogue to
book from, and ways to watch the outbox and to act as the meeting platform."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from core.settings import Settings
from core.vocabulary import ErrorType
from db.models import DomainEvent, ScheduledSession
from integrations import meeting_webhooks
from integrations.meetings.base import MeetingPlatform
from integrations.meetings.room_link import RoomLinkPlatform
from tests.activities.builders import Backend
from tests.events.conftest import MEETING_SECRET
from tests.support.database import truncate_all_sql
from tests.support.temporal import installed_binary
from worker import build_activities
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import RequestDetails, SubmitRequest
from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES
from workflows.start import start_operation

SessionFactory = async_sessionmaker[AsyncSession]
ConsultationHandle = WorkflowHandle[ConsultationWorkflow, RequestDetails]
T = TypeVar("T")

ROOMS = "https://meet.example.test"

SHORT_TIMINGS = LifecycleTimings(
    confirmation_timeout_seconds=120,
    confirmation_reminder_before_seconds=1,
    assignment_retry_interval_seconds=1,
    max_attempts=3,
    minimum_notice_seconds=0,
    hold_ttl_seconds=300,
    reminder_offsets_seconds=(),
    no_show_grace_seconds=2,
    no_show_report_window_seconds=2,
    requester_cancel_cutoff_seconds=0,
)
"""A lifecycle in seconds: everything a test does not wait for is far away."""


@asynccontextmanager
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal CLI dev server (real time, real updates) with our search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
    )
    async with env:
        yield env


@asynccontextmanager
async def worker(
    client: Client,
    sessions: SessionFactory,
    settings: Settings,
    platform: MeetingPlatform | None = None,
) -> AsyncIterator[str]:
    """A worker with the real activities on a fresh task queue; yields the queue."""
    task_queue = f"consultations-{uuid.uuid4()}"
    activities = build_activities(
        sessions, settings, meeting_platform=platform or RoomLinkPlatform(ROOMS)
    )
    async with Worker(
        client, task_queue=task_queue, workflows=[ConsultationWorkflow], activities=activities
    ):
        yield task_queue


@asynccontextmanager
async def module_database(engine: AsyncEngine) -> AsyncIterator[SessionFactory]:
    """Sessions for a whole module; every table is emptied when it is done."""
    yield async_sessionmaker(engine, expire_on_commit=False)
    async with engine.begin() as connection:
        await connection.execute(text(truncate_all_sql()))


@asynccontextmanager
async def api(settings: Settings, temporal: Client) -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP API talking to the real Temporal server."""
    app = create_app(settings, temporal=temporal)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@dataclass(frozen=True)
class Team:
    """A service type only these consultants can take: requests of different tests
    never compete for each other's slots."""

    service_type_id: uuid.UUID
    consultants: list[uuid.UUID]


async def team(backend: Backend, size: int, *, minutes: int = 60) -> Team:
    specialization = f"spec-{uuid.uuid4().hex[:12]}"
    service_type_id = await backend.service_type(specialization=specialization, minutes=minutes)
    consultants = [await backend.consultant(specializations=(specialization,)) for _ in range(size)]
    return Team(service_type_id, consultants)


def request_input(
    team: Team,
    *,
    window_start: datetime,
    window_end: datetime,
    timings: LifecycleTimings = SHORT_TIMINGS,
    duration_minutes: int = 60,
    preferred: uuid.UUID | None = None,
) -> ConsultationInput:
    request_id = uuid.uuid4()
    return ConsultationInput(
        request_id=request_id,
        requester_id=uuid.uuid4(),
        service_type_id=team.service_type_id,
        duration_minutes=duration_minutes,
        window_start=window_start,
        window_end=window_end,
        timings=timings,
        preferred_consultant_id=preferred,
        idempotency_key=f"key-{request_id}",
    )


async def submit(client: Client, request: ConsultationInput, task_queue: str) -> ConsultationHandle:
    """What the API's POST does: update-with-start, answered once the row is stored."""
    operation = start_operation(request, task_queue=task_queue)
    await client.execute_update_with_start_workflow(
        ConsultationWorkflow.submit, SubmitRequest(), start_workflow_operation=operation
    )
    return await operation.workflow_handle()


async def poll(
    probe: Callable[[], Awaitable[T | None]], *, within: float, what: str, every: float = 0.05
) -> T:
    """The first non-``None`` answer of ``probe``; fails after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        answer = await probe()
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {within:g} s waiting for {what}")
        await asyncio.sleep(every)


async def details_when(
    handle: ConsultationHandle, condition: Callable[[RequestDetails], bool], within: float = 20.0
) -> RequestDetails:
    async def probe() -> RequestDetails | None:
        details = await handle.query(ConsultationWorkflow.details)
        return details if condition(details) else None

    return await poll(probe, within=within, what=f"a state of {handle.id}")


async def retry_rejected(
    call: Callable[[], Awaitable[T]], *, retry_on: ErrorType, within: float = 20.0
) -> T:
    """Send an update again while the workflow refuses it with ``retry_on`` (it is not
    there yet, e.g. still replaying after a restart or before the grace period)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await call()
        except WorkflowUpdateFailedError as failure:
            cause = failure.cause
            if not (isinstance(cause, ApplicationError) and cause.type == retry_on.value):
                raise
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def outbox(
    sessions: SessionFactory, request_id: uuid.UUID | None = None
) -> list[DomainEvent]:
    """Domain events in feed order (all, or one request's)."""
    query = select(DomainEvent).order_by(DomainEvent.transaction_id, DomainEvent.sequence)
    if request_id is not None:
        query = query.where(DomainEvent.consultation_request_id == request_id)
    async with sessions() as session:
        return list((await session.scalars(query)).all())


async def event_types(sessions: SessionFactory, request_id: uuid.UUID) -> list[str]:
    return [event.event_type for event in await outbox(sessions, request_id)]


async def wait_for_event(
    sessions: SessionFactory, request_id: uuid.UUID, event_type: str, *, within: float = 20.0
) -> DomainEvent:
    async def probe() -> DomainEvent | None:
        for event in await outbox(sessions, request_id):
            if event.event_type == event_type:
                return event
        return None

    return await poll(probe, within=within, what=f"{event_type} of request {request_id}")


async def session_row(sessions: SessionFactory, session_id: uuid.UUID) -> ScheduledSession:
    async with sessions() as session:
        row = await session.get(ScheduledSession, session_id, populate_existing=True)
    assert row is not None
    return row


# --- the meeting platform's side of the inbound webhook ----------------------------------

MEETING_EVENTS_URL = "/v1/webhooks/meeting-platform"


def meeting_event(
    event_type: str, meeting_id: str, *, role: str | None = None, event_id: str | None = None
) -> dict[str, Any]:
    """An event as the platform sends it (the participant's name is not kept)."""
    event: dict[str, Any] = {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "meeting_id": meeting_id,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    if role is not None:
        event["participant"] = {"role": role, "name": "Someone"}
    return event


def signed_headers(
    body: bytes, *, secret: str = MEETING_SECRET, sent_at: float | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time() if sent_at is None else sent_at))
    return {
        meeting_webhooks.TIMESTAMP_HEADER: timestamp,
        meeting_webhooks.SIGNATURE_HEADER: meeting_webhooks.sign(body, timestamp, secret),
        "Content-Type": "application/json",
    }


async def post_meeting_event(
    http: httpx.AsyncClient,
    event: dict[str, Any],
    *,
    secret: str = MEETING_SECRET,
    sent_at: float | None = None,
) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = signed_headers(body, secret=secret, sent_at=sent_at)
    return await http.post(MEETING_EVENTS_URL, content=body, headers=headers)


def until(moment: datetime) -> float:
    """Seconds from now until ``moment`` (never negative)."""
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)
