"""The outbox and the state change are one: a rolled-back transition leaves no event,
and a worker killed in the middle of many lifecycles loses no event and repeats none."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

import activities.sessions
from core.events import EventType
from core.settings import Environment, Settings
from core.vocabulary import (
    CancellationReason,
    ErrorType,
    Party,
    RequestStatus,
    SessionStatus,
    StatusReason,
)
from db.models import AvailabilitySlot, ConsultationRequest, DomainEvent, ScheduledSession
from db.outbox import dedupe_key, emit
from tests.activities.builders import Backend, future
from tests.events.harness import (
    ConsultationHandle,
    Team,
    api,
    details_when,
    dev_server,
    event_types,
    outbox,
    poll,
    request_input,
    retry_rejected,
    submit,
    team,
    wait_for_event,
    worker,
)
from tests.support.database import REPO_ROOT
from tests.support.tokens import TokenFactory
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.activity_io import (
    CancelSessionInput,
    FindCandidatesInput,
    ReleaseHoldInput,
    ReleaseOutcome,
    ReserveInput,
)
from workflows.contracts.messages import CancelRequest, ConfirmRequest
from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings

SessionFactory = async_sessionmaker[AsyncSession]
Emit = Callable[..., Any]

ASKED = [
    EventType.CONSULTATION_REQUESTED,
    EventType.CONSULTATION_ASSIGNED,
    EventType.CONSULTATION_CONFIRMATION_REQUESTED,
]
BOOKED = [*ASKED, EventType.SESSION_SCHEDULED, EventType.SESSION_MEETING_READY]


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server() as env:
        yield env


@pytest.fixture
def backend(session_factory: SessionFactory) -> Backend:
    return Backend(session_factory)


async def count(sessions: SessionFactory, model: type[Any]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


# --- a transition that rolls back leaves no event ---------------------------------------


async def held_request(backend: Backend) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A request holding 10:00-11:00 of a 09:00-12:00 slot, awaiting confirmation:
    (request, consultant, slot)."""
    service_type_id = await backend.service_type()
    consultant = await backend.consultant()
    slot = await backend.slot(consultant, future(hour=9), hours=3)
    request_id = await backend.request(
        service_type_id, window_start=future(hour=0), window_end=future(days=4)
    )
    assert (await backend.hold(request_id, slot, consultant, not_before=future(hour=10))).held
    return request_id, consultant, slot


async def test_an_exclusion_violation_after_the_event_insert_leaves_no_trace(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id, consultant, slot = await held_request(backend)
    row = await backend.request_row(request_id)
    reserve = ReserveInput(
        request_id=request_id,
        session_id=uuid.uuid4(),
        slot_id=slot,
        consultant_id=consultant,
        requester_id=row.requester_user_id,
        service_type_id=row.consultation_service_type_id,
        start=future(hour=10),
        end=future(hour=11),
    )
    seen_inside: list[int] = []

    async def emit_then_overlap(session: AsyncSession, event_type: EventType, **kw: Any) -> bool:
        """The event is written; then a statement PostgreSQL refuses in the same
        transaction: a slot overlapping the consultant's booked one."""
        appended = await emit(session, event_type, **kw)
        seen_inside.append(
            await session.scalar(
                select(func.count())
                .select_from(DomainEvent)
                .where(
                    DomainEvent.dedupe_key
                    == dedupe_key(event_type, kw["subject"], *kw.get("occurrence", ()))
                )
            )
            or 0
        )
        await session.execute(
            insert(AvailabilitySlot).values(
                consultant_user_id=consultant,
                start_time=future(hour=10) + timedelta(minutes=15),
                end_time=future(hour=10) + timedelta(minutes=45),
            )
        )
        return appended

    monkeypatch.setattr(activities.sessions, "emit", emit_then_overlap)
    with pytest.raises(ApplicationError) as refused:
        await backend.sessions.reserve(reserve)
    assert refused.value.type == ErrorType.SLOT_UNAVAILABLE.value
    assert seen_inside == [1]  # the event existed inside the transaction

    # Neither the state change nor the event is visible.
    assert await backend.event_types(request_id) == ASKED
    assert await count(backend.session_factory, ScheduledSession) == 0
    request = await backend.request_row(request_id)
    assert (request.status, request.scheduled_session_id) == ("pending_confirmation", None)
    [piece] = [s for s in await backend.slots_of(consultant) if s.status != "available"]
    assert (piece.id, piece.status, piece.start_time) == (slot, "held", future(hour=10))

    # Nothing half-written blocks the retry, whose event is then written once.
    monkeypatch.setattr(activities.sessions, "emit", emit)
    await backend.sessions.reserve(reserve)
    await backend.sessions.reserve(reserve)  # retried after its commit
    assert await backend.event_types(request_id) == [*ASKED, EventType.SESSION_SCHEDULED]


async def test_a_failure_between_two_events_of_one_transition_keeps_neither(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id, consultant, slot = await held_request(backend)
    row = await backend.request_row(request_id)
    reserved = await backend.sessions.reserve(
        ReserveInput(
            request_id=request_id,
            session_id=uuid.uuid4(),
            slot_id=slot,
            consultant_id=consultant,
            requester_id=row.requester_user_id,
            service_type_id=row.consultation_service_type_id,
            start=future(hour=10),
            end=future(hour=11),
        )
    )
    cancel = CancelSessionInput(
        request_id=request_id,
        session_id=reserved.session_id,
        party=Party.CONSULTANT,
        actor_id=consultant,
        reason=CancellationReason.ILLNESS,
        session_status=SessionStatus.CANCELLED_BY_CONSULTANT,
        status_reason=StatusReason.CANCELLED_BY_CONSULTANT,
    )

    async def second_emit_fails(session: AsyncSession, event_type: EventType, **kw: Any) -> bool:
        if event_type is EventType.CONSULTATION_CANCELLED:
            raise ConnectionResetError("the database went away mid-transition")
        return await emit(session, event_type, **kw)

    monkeypatch.setattr(activities.sessions, "emit", second_emit_fails)
    with pytest.raises(ConnectionResetError):
        await backend.sessions.cancel_session(cancel)
    before = [*ASKED, EventType.SESSION_SCHEDULED]
    assert await backend.event_types(request_id) == before
    assert (await backend.session_row(reserved.session_id)).status == "scheduled"
    assert (await backend.request_row(request_id)).status == "scheduled"
    assert {s.id: s.status for s in await backend.slots_of(consultant)}[slot] == "booked"

    monkeypatch.setattr(activities.sessions, "emit", emit)
    for _ in range(2):  # the retry, and a retry of the retry after its commit
        await backend.sessions.cancel_session(cancel)
    assert await backend.event_types(request_id) == [
        *before,
        EventType.SESSION_CANCELLED,
        EventType.CONSULTATION_CANCELLED,
    ]


async def test_a_hold_whose_result_was_lost_is_found_again(backend: Backend) -> None:
    """The worker dies after the hold committed, before the workflow recorded it: on
    the next worker the workflow runs the step again and must get the same hold (its
    events are out already), not another consultant it can never confirm."""
    service_type_id = await backend.service_type()
    first, second = await backend.consultant(), await backend.consultant()
    await backend.slot(first, future(hour=9))
    await backend.slot(second, future(hour=11))
    request_id = await backend.request(
        service_type_id, window_start=future(hour=0), window_end=future(days=4)
    )
    step = FindCandidatesInput(
        request_id=request_id,
        service_type_id=service_type_id,
        duration_minutes=60,
        not_before=future(hour=8),
        window_end=future(days=4),
    )
    best, _ = (await backend.requests.find_candidates(step)).candidates
    assert (await backend.hold(request_id, best.slot_id, first, not_before=step.not_before)).held

    again = await backend.requests.find_candidates(step)
    assert again.candidates == (best,)
    retried = await backend.hold(request_id, best.slot_id, first, not_before=step.not_before)
    assert (retried.held, retried.start) == (True, future(hour=9))
    assert await backend.event_types(request_id) == ASKED

    # Once the request is back to awaiting assignment, the search is the usual one.
    await backend.requests.release_hold(
        ReleaseHoldInput(
            request_id=request_id,
            slot_id=best.slot_id,
            consultant_id=first,
            attempt=1,
            outcome=ReleaseOutcome.DECLINED,
        )
    )
    after = await backend.requests.find_candidates(replace(step, excluded_consultant_ids=(first,)))
    assert [c.consultant_id for c in after.candidates] == [second]


async def test_an_attempt_that_fails_after_writing_its_event_is_retried_into_one_event(
    temporal: WorkflowEnvironment,
    session_factory: SessionFactory,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the workflow: the first reserve attempt writes its event and then fails;
    the local activity's retry books the session, and one event says so."""
    backend = Backend(session_factory)
    crew = await team(backend, 1)
    [consultant] = crew.consultants
    await backend.slot(consultant, future(hour=9), hours=3)
    failed: list[str] = []

    async def fail_once(session: AsyncSession, event_type: EventType, **kw: Any) -> bool:
        appended = await emit(session, event_type, **kw)
        if event_type is EventType.SESSION_SCHEDULED and not failed:
            failed.append(dedupe_key(event_type, kw["subject"], *kw.get("occurrence", ())))
            raise ConnectionResetError("lost the connection before the commit")
        return appended

    monkeypatch.setattr(activities.sessions, "emit", fail_once)
    now = datetime.now(UTC)
    request = request_input(crew, window_start=now, window_end=now + timedelta(days=5))
    async with worker(temporal.client, session_factory, settings) as task_queue:
        handle = await submit(temporal.client, request, task_queue)
        await details_when(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        booked = await handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=consultant)
        )
        await details_when(handle, lambda d: d.meeting_ready)
    assert len(failed) == 1
    assert booked.session_id is not None
    assert await event_types(session_factory, request.request_id) == BOOKED
    assert await count(session_factory, ScheduledSession) == 1


# --- killing the worker in the middle of twenty lifecycles ---------------------------------

REQUESTS = 20
BOOKED_THEN_CANCELLED = [*BOOKED, EventType.SESSION_CANCELLED, EventType.CONSULTATION_CANCELLED]
UNANSWERED = [
    *ASKED,
    EventType.CONSULTATION_CONFIRMATION_REMINDER,
    EventType.CONSULTATION_CONFIRMATION_EXPIRED,
    EventType.CONSULTATION_REJECTED,
]
KILL_AFTER = 45
"""Events in the outbox when the worker is killed: well into the first transitions of
every request, long before the last ones."""
UNANSWERED_TIMEOUT = timedelta(seconds=4)
"""The per-service-type confirmation timeout of the requests nobody answers."""


def service_settings(settings: Settings, task_queue: str, temporal_address: str) -> Settings:
    """What the API and the worker run with: a lifecycle in seconds."""
    return Settings(
        environment=Environment.TEST,
        database_url=settings.database_url,
        temporal_address=temporal_address,
        temporal_task_queue=task_queue,
        jwt_secret=settings.jwt_secret,
        confirmation_timeout=timedelta(minutes=2),
        confirmation_reminder_before=timedelta(seconds=2),
        max_assignment_attempts=1,
        minimum_notice=timedelta(0),
        requester_cancel_cutoff=timedelta(0),
        meeting_room_base_url="https://meet.example.test",
    )


def worker_environment(service: Settings) -> dict[str, str]:
    """The worker process's configuration, as its ``BOOKING_*`` variables."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("BOOKING_")}
    assert service.database_url is not None
    assert service.jwt_secret is not None

    def seconds(duration: timedelta) -> str:
        return str(duration.total_seconds())

    return {
        **inherited,
        "BOOKING_ENVIRONMENT": service.environment.value,
        "BOOKING_DATABASE_URL": service.database_url,
        "BOOKING_TEMPORAL_ADDRESS": service.temporal_address,
        "BOOKING_TEMPORAL_TASK_QUEUE": service.temporal_task_queue,
        "BOOKING_JWT_SECRET": service.jwt_secret.get_secret_value(),
        "BOOKING_CONFIRMATION_TIMEOUT": seconds(service.confirmation_timeout),
        "BOOKING_CONFIRMATION_REMINDER_BEFORE": seconds(service.confirmation_reminder_before),
        "BOOKING_MAX_ASSIGNMENT_ATTEMPTS": str(service.max_assignment_attempts),
        "BOOKING_MINIMUM_NOTICE": seconds(service.minimum_notice),
        "BOOKING_REQUESTER_CANCEL_CUTOFF": seconds(service.requester_cancel_cutoff),
        "BOOKING_MEETING_ROOM_BASE_URL": service.meeting_room_base_url,
        "BOOKING_LOG_LEVEL": "WARNING",
    }


async def start_worker(environment: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "booking.cli",
            "worker",
            cwd=REPO_ROOT,
            env=environment,
            stdout=output,
            stderr=output,
        )


async def decide(call: Callable[[], Any]) -> Any:
    """An update, sent again while the workflow is not there yet (still replaying after
    the restart) or the server gave up waiting for a worker."""
    while True:
        try:
            return await retry_rejected(call, retry_on=ErrorType.INVALID_STATE, within=90)
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            continue


async def book_then_cancel(
    client: Client,
    sessions: SessionFactory,
    request: ConsultationInput,
    consultant: uuid.UUID,
    queue: str,
) -> RequestStatus:
    handle: ConsultationHandle = await submit(client, request, queue)

    async def waiting() -> bool | None:
        async with sessions() as session:
            status = await session.scalar(
                select(ConsultationRequest.status).where(
                    ConsultationRequest.id == request.request_id
                )
            )
        return True if status == RequestStatus.PENDING_CONFIRMATION.value else None

    # The database, not a query: it answers while no worker runs.
    await poll(waiting, within=90, what="the request to await confirmation", every=0.1)
    await decide(
        lambda: handle.execute_update(
            ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=consultant)
        )
    )
    await wait_for_event(sessions, request.request_id, EventType.SESSION_MEETING_READY, within=90)
    await decide(
        lambda: handle.execute_update(
            ConsultationWorkflow.cancel,
            CancelRequest(party=Party.REQUESTER, actor_id=request.requester_id),
        )
    )
    return (await handle.result()).status


async def left_unanswered(client: Client, request: ConsultationInput, queue: str) -> RequestStatus:
    handle: ConsultationHandle = await submit(client, request, queue)
    return (await handle.result()).status


async def test_killing_the_worker_mid_lifecycle_loses_and_repeats_no_event(
    temporal: WorkflowEnvironment,
    session_factory: SessionFactory,
    settings: Settings,
    tmp_path: Path,
) -> None:
    address = temporal.client.service_client.config.target_host
    service = service_settings(settings, f"consultations-{uuid.uuid4()}", address)
    environment = worker_environment(service)
    log = tmp_path / "worker.log"
    backend = Backend(session_factory)
    now = datetime.now(UTC)
    start = future(days=1, hour=9)
    plans: list[tuple[Team, bool]] = []
    for index in range(REQUESTS):
        crew = await team(backend, 1)
        await backend.slot(crew.consultants[0], start)
        plans.append((crew, index % 2 == 0))

    def timings(answered: bool) -> LifecycleTimings:
        # As the API computes them, with the service type's own timeout for the
        # requests nobody answers.
        override = None if answered else UNANSWERED_TIMEOUT
        return LifecycleTimings.from_settings(service, confirmation_timeout_override=override)

    requests = [
        request_input(
            crew,
            window_start=now,
            window_end=start + timedelta(hours=3),
            timings=timings(answered),
        )
        for crew, answered in plans
    ]
    first = await start_worker(environment, log)
    journeys = [
        asyncio.create_task(
            book_then_cancel(
                temporal.client,
                session_factory,
                request,
                crew.consultants[0],
                service.temporal_task_queue,
            )
            if answered
            else left_unanswered(temporal.client, request, service.temporal_task_queue)
        )
        for request, (crew, answered) in zip(requests, plans, strict=True)
    ]
    try:

        async def enough() -> int | None:
            written = await count(session_factory, DomainEvent)
            return written if written >= KILL_AFTER else None

        written_at_kill = await poll(enough, within=60, what="the first events", every=0.01)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        finished_at_kill = sum(journey.done() for journey in journeys)

        second = await start_worker(environment, log)
        try:
            async with asyncio.timeout(120):
                outcomes = await asyncio.gather(*journeys)
        finally:
            second.send_signal(signal.SIGTERM)
            stopped = await second.wait()
    except BaseException:
        for journey in journeys:
            journey.cancel()
        await asyncio.gather(*journeys, return_exceptions=True)
        if first.returncode is None:
            first.kill()
            await first.wait()
        raise
    output = log.read_text(errors="replace")
    assert stopped == 0, output

    total = len(BOOKED_THEN_CANCELLED + UNANSWERED) * REQUESTS // 2
    # Killed mid-way: some events written, most not, and no request finished.
    assert KILL_AFTER <= written_at_kill < total
    assert finished_at_kill == 0

    assert outcomes == [
        RequestStatus.CANCELLED if answered else RequestStatus.REJECTED for _, answered in plans
    ]
    events = await outbox(session_factory)
    assert len(events) == total
    for request, (_, answered) in zip(requests, plans, strict=True):
        mine = [event for event in events if event.consultation_request_id == request.request_id]
        expected = BOOKED_THEN_CANCELLED if answered else UNANSWERED
        assert [event.event_type for event in mine] == expected, output
        # Each transition once: one event per (type, request), under its dedupe key.
        assert Counter(event.event_type for event in mine) == Counter(expected)
        for event in mine:
            assert event.dedupe_key.startswith(f"{event.event_type}:")
        row = await backend.request_row(request.request_id)
        assert row.status == (RequestStatus.CANCELLED if answered else RequestStatus.REJECTED)
        if not answered:
            assert row.status_reason == StatusReason.ATTEMPTS_EXHAUSTED.value

    # The feed serves every one of them once, in the outbox's order.
    served: list[dict[str, Any]] = []
    reader = TokenFactory(settings).headers("events:read")
    async with api(settings, temporal.client) as http:
        cursor: str | None = None
        async with asyncio.timeout(60):
            while len(served) < total:
                params: dict[str, Any] = {"limit": 50}
                if cursor is not None:
                    params["after"] = cursor
                page = (await http.get("/v1/events", params=params, headers=reader)).json()
                served += page["items"]
                cursor = page["next_cursor"]
                if not page["has_more"] and len(served) < total:
                    await asyncio.sleep(0.05)
        page = (await http.get("/v1/events", params={"after": cursor}, headers=reader)).json()
    assert page["items"] == []
    assert [item["id"] for item in served] == [str(event.id) for event in events]
