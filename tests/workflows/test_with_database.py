"""The workflow with its real activities on PostgreSQL (dev server, real worker)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.settings import Environment, Settings
from core.vocabulary import CancellationReason, ErrorType, Party, RequestStatus, SessionStatus
from integrations.meetings.room_link import RoomLinkPlatform
from tests.activities.builders import Backend, future
from tests.workflows.support import event_types, expect_rejection, make_input, wait_for
from tests.workflows.test_messages import HAPPY_PATH_EVENT_BUDGET, submit
from worker import build_activities
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import CancelRequest, ConfirmRequest

SETTINGS = Settings(
    environment=Environment.TEST,
    jwt_secret=SecretStr("integration-test-secret-of-32-characters"),
)


@asynccontextmanager
async def real_worker(
    client: Client, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[str]:
    task_queue = f"consultations-{uuid.uuid4()}"
    activities = build_activities(
        sessions, SETTINGS, meeting_platform=RoomLinkPlatform("https://meet.example.test")
    )
    async with Worker(
        client, task_queue=task_queue, workflows=[ConsultationWorkflow], activities=activities
    ):
        yield task_queue


async def test_submit_confirm_and_cancel_against_the_database(
    dev_env: WorkflowEnvironment, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    backend = Backend(session_factory)
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    slot = await backend.slot(consultant, future(hour=9), hours=3)
    now = await dev_env.get_current_time()
    request = make_input(now, service_type_id=service_type_id)

    async with real_worker(dev_env.client, session_factory) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        assert (await backend.request_row(request.request_id)).idempotency_key == (
            request.idempotency_key
        )
        asked = await wait_for(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        assert asked.assigned_consultant_id == consultant
        assert (await backend.request_row(request.request_id)).status == "pending_confirmation"

        booked = await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=consultant)
        )
        ready = await wait_for(handle, lambda d: d.meeting_ready)
        history_length = len(await event_types(handle))
        assert booked.session_id is not None
        session = await backend.session_row(booked.session_id)
        assert session.status == "scheduled"
        assert (session.meeting_platform_join_url or "").startswith("https://meet.example.test/")
        pieces = [(s.start_time, s.status) for s in await backend.slots_of(consultant)]
        assert pieces == [(future(hour=9), "booked"), (future(hour=10), "available")]

        cancelled = await handle.execute_update(
            ConsultationWorkflow.cancel,
            CancelRequest(
                party=Party.REQUESTER,
                actor_id=request.requester_id,
                reason=CancellationReason.SCHEDULE_CONFLICT,
            ),
        )
        await handle.result()

    assert ready.session_start == future(hour=9)
    assert history_length <= HAPPY_PATH_EVENT_BUDGET
    assert cancelled.session_status is SessionStatus.CANCELLED_BY_USER
    request_row = await backend.request_row(request.request_id)
    assert request_row.status == "cancelled"
    assert request_row.status_reason == "cancelled_by_requester"
    assert {s.id: s.status for s in await backend.slots_of(consultant)}[slot] == "available"
    assert await backend.event_types(request.request_id) == [
        "consultation.requested",
        "consultation.assigned",
        "consultation.confirmation_requested",
        "session.scheduled",
        "session.meeting_ready",
        "session.cancelled",
        "consultation.cancelled",
    ]


async def test_a_calendar_event_found_after_the_hold_fails_the_confirm_and_moves_on(
    dev_env: WorkflowEnvironment, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    backend = Backend(session_factory)
    service_type_id = await backend.service_type()
    first = await backend.consultant()
    second = await backend.consultant()
    await backend.slot(first, future(hour=9), hours=1)
    await backend.slot(second, future(hour=12), hours=1)
    now = await dev_env.get_current_time()
    request = make_input(now, service_type_id=service_type_id)

    async with real_worker(dev_env.client, session_factory) as task_queue:
        handle = await submit(dev_env, request, task_queue)
        await wait_for(handle, lambda d: d.assigned_consultant_id == first)
        # The first consultant's calendar sync finds a meeting over the held hour.
        await backend.busy(first, future(hour=9) + timedelta(minutes=30), future(hour=11))

        await expect_rejection(
            handle.execute_update(
                ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=first)
            ),
            ErrorType.CONSULTANT_BUSY,
        )
        asked = await wait_for(handle, lambda d: d.assigned_consultant_id == second)
        booked = await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=second)
        )
        await handle.execute_update(
            ConsultationWorkflow.cancel,
            CancelRequest(party=Party.REQUESTER, actor_id=request.requester_id),
        )
        await handle.result()

    assert asked.status is RequestStatus.PENDING_CONFIRMATION
    assert booked.session_start == future(hour=12)
    assert [s.status for s in await backend.slots_of(first)] == ["available"]
