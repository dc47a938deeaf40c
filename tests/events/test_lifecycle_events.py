"""Each path of a consultation emits exactly its domain events, and subscribers get
exactly those, signed, once each and in order per request.

Everything is real: the workflow on the Temporal dev server, a worker running the
real activities on PostgreSQL, the API (for the meeting platform's signed events),
the webhook dispatcher, and HTTP receivers on loopback, one of which fails for a
while before it recovers. All paths run at once (one dev server, one worker), with
a lifecycle measured in seconds; the paths that need a session to actually start
share one start time, the next whole minute at least ``LEAD`` ahead (sessions start
on whole minutes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook
from temporalio.client import Client

from core.events import EventType
from core.settings import Settings
from core.vocabulary import (
    CancellationReason,
    DeclineReason,
    DeliveryStatus,
    ErrorType,
    ParticipantRole,
    Party,
    RequestStatus,
)
from db.models import DomainEvent
from integrations.meetings.base import MeetingPlatformError, MeetingRoom, MeetingSpec
from integrations.meetings.room_link import RoomLinkPlatform
from integrations.webhooks.dispatcher import WebhookDispatcher
from tests.activities.builders import Backend
from tests.events.harness import (
    ROOMS,
    SHORT_TIMINGS,
    ConsultationHandle,
    SessionFactory,
    Team,
    api,
    details_when,
    dev_server,
    meeting_event,
    module_database,
    outbox,
    post_meeting_event,
    request_input,
    retry_rejected,
    session_row,
    submit,
    team,
    until,
    wait_for_event,
    worker,
)
from tests.events.helpers import create_subscription, deliveries, eventually, running
from tests.events.receiver import Received, Receiver
from tests.support.loopback import LoopbackServer
from tests.support.tokens import TokenFactory
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.messages import (
    CancelRequest,
    ConfirmRequest,
    DeclineRequest,
    NoShowReport,
    RescheduleRequest,
)
from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings
from workflows.timeline import ceil_to_minute

pytestmark = pytest.mark.e2e

LEAD = timedelta(seconds=18)
"""Time to book the sessions that start soon before their first reminder is due."""

WAIT = 30.0
"""Longest wait for one step that does not wait for the session start."""

# The subscriber that fails at first needs retries for longer than its outage.
PATIENT_DELIVERY: dict[str, Any] = {
    "webhook_max_attempts": 60,
    "webhook_backoff_base": timedelta(milliseconds=50),
    "webhook_backoff_max": timedelta(milliseconds=250),
    "webhook_poll_interval": timedelta(milliseconds=50),
}
OUTAGE = 1.5
"""Seconds the flaky receiver answers 503 from its first request on."""

STEADY, FLAKY = "/steady", "/flaky"

REQUESTED = EventType.CONSULTATION_REQUESTED
ASSIGNED = EventType.CONSULTATION_ASSIGNED
CONFIRMATION_REQUESTED = EventType.CONSULTATION_CONFIRMATION_REQUESTED
CONFIRMATION_REMINDER = EventType.CONSULTATION_CONFIRMATION_REMINDER
CONFIRMATION_EXPIRED = EventType.CONSULTATION_CONFIRMATION_EXPIRED
DECLINED = EventType.CONSULTATION_DECLINED
REJECTED = EventType.CONSULTATION_REJECTED
REQUEST_CANCELLED = EventType.CONSULTATION_CANCELLED
SCHEDULED = EventType.SESSION_SCHEDULED
MEETING_READY = EventType.SESSION_MEETING_READY
MEETING_PENDING = EventType.SESSION_MEETING_PENDING
RESCHEDULED = EventType.SESSION_RESCHEDULED
REMINDER = EventType.SESSION_REMINDER
STARTED = EventType.SESSION_STARTED
COMPLETED = EventType.SESSION_COMPLETED
NO_SHOW = EventType.SESSION_NO_SHOW
SESSION_CANCELLED = EventType.SESSION_CANCELLED

ASKED = [REQUESTED, ASSIGNED, CONFIRMATION_REQUESTED]
BOOKED = [*ASKED, SCHEDULED, MEETING_READY]


class RefusingPlatform:
    """A meeting platform that refuses every room for good (compensation path)."""

    @property
    def reports_attendance(self) -> bool:
        return False

    async def create(self, spec: MeetingSpec) -> MeetingRoom:
        raise MeetingPlatformError(f"no room for {spec.session_id}", permanent=True)

    async def reschedule(self, room: MeetingRoom, spec: MeetingSpec) -> MeetingRoom:
        raise MeetingPlatformError("not expected", permanent=True)

    async def cancel(self, room: MeetingRoom, session_id: uuid.UUID) -> None:
        raise MeetingPlatformError("not expected", permanent=True)


class LatePlatform:
    """Rooms as usual, but the first two create calls fail as a platform that is down
    does (worth a retry)."""

    def __init__(self) -> None:
        self._rooms = RoomLinkPlatform(ROOMS)
        self.failures_left = 2

    @property
    def reports_attendance(self) -> bool:
        return False

    async def create(self, spec: MeetingSpec) -> MeetingRoom:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise MeetingPlatformError("platform down", permanent=False)
        return await self._rooms.create(spec)

    async def reschedule(self, room: MeetingRoom, spec: MeetingSpec) -> MeetingRoom:
        return await self._rooms.reschedule(room, spec)

    async def cancel(self, room: MeetingRoom, session_id: uuid.UUID) -> None:
        await self._rooms.cancel(room, session_id)


class Outage:
    """Answers 503 on ``path`` for ``OUTAGE`` seconds from its first request, then 200."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.began: float | None = None

    def __call__(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if path != self.path:
            return 200
        now = time.monotonic()
        if self.began is None:
            self.began = now
        return 503 if now - self.began < OUTAGE else 200


@dataclass
class Stage:
    """What every path drives the service with."""

    client: Client
    task_queue: str
    refusing_queue: str
    late_queue: str
    backend: Backend
    sessions: SessionFactory
    http: httpx.AsyncClient
    now: datetime
    soon: datetime  # the shared start of the sessions that really start
    far: datetime  # a start no test waits for

    def request(
        self,
        crew: Team,
        *,
        timings: LifecycleTimings = SHORT_TIMINGS,
        duration_minutes: int = 60,
        preferred: uuid.UUID | None = None,
        window_end: datetime | None = None,
    ) -> ConsultationInput:
        """A request whose window runs from now to well after ``far``."""
        return request_input(
            crew,
            window_start=self.now,
            window_end=window_end or self.far + timedelta(hours=6),
            timings=timings,
            duration_minutes=duration_minutes,
            preferred=preferred,
        )


@dataclass
class Walk:
    """One request's path: what it must have emitted, and ids for payload checks."""

    request_id: uuid.UUID
    expected: list[EventType]
    ids: dict[str, uuid.UUID] = field(default_factory=dict)


Drive = Callable[[Stage], Awaitable[Walk]]
PATHS: dict[str, Drive] = {}


def path(function: Drive) -> Drive:
    """Registers a path: all of them run together in the ``run`` fixture."""
    PATHS[function.__name__] = function
    return function


async def confirm(handle: ConsultationHandle, consultant: uuid.UUID) -> None:
    await details_when(
        handle,
        lambda d: (
            d.status is RequestStatus.PENDING_CONFIRMATION
            and d.assigned_consultant_id == consultant
        ),
    )
    await handle.execute_update(
        ConsultationWorkflow.confirm, ConfirmRequest(consultant_id=consultant)
    )


async def decline(handle: ConsultationHandle, consultant: uuid.UUID) -> None:
    await details_when(
        handle,
        lambda d: (
            d.status is RequestStatus.PENDING_CONFIRMATION
            and d.assigned_consultant_id == consultant
        ),
    )
    await handle.execute_update(
        ConsultationWorkflow.decline,
        DeclineRequest(consultant_id=consultant, reason=DeclineReason.SCHEDULE_CONFLICT),
    )


async def booked(handle: ConsultationHandle, consultant: uuid.UUID) -> uuid.UUID:
    """Confirm and wait for the meeting link; returns the session id."""
    await confirm(handle, consultant)
    ready = await details_when(handle, lambda d: d.meeting_ready)
    assert ready.session_id is not None
    return ready.session_id


async def meeting_of(stage: Stage, session_id: uuid.UUID) -> str:
    meeting_id = (await session_row(stage.sessions, session_id)).meeting_platform_session_id
    assert meeting_id
    return meeting_id


async def one_consultant(stage: Stage, start: datetime, hours: float = 1) -> tuple[Team, uuid.UUID]:
    crew = await team(stage.backend, 1)
    await stage.backend.slot(crew.consultants[0], start, hours=hours)
    return crew, crew.consultants[0]


# --- the paths -------------------------------------------------------------------------


@path
async def happy(stage: Stage) -> Walk:
    crew, consultant = await one_consultant(stage, stage.soon)
    timings = replace(SHORT_TIMINGS, reminder_offsets_seconds=(6.0, 3.0))
    request = stage.request(crew, timings=timings, duration_minutes=1)
    handle = await submit(stage.client, request, stage.task_queue)
    session_id = await booked(handle, consultant)
    # The session starts on its own at its start time; the platform reports its end.
    await wait_for_event(
        stage.sessions, request.request_id, STARTED, within=until(stage.soon) + WAIT
    )
    ended = meeting_event("meeting.ended", await meeting_of(stage, session_id))
    assert (await post_meeting_event(stage.http, ended)).status_code == 202
    await wait_for_event(stage.sessions, request.request_id, COMPLETED)
    return Walk(
        request.request_id,
        [*BOOKED, REMINDER, REMINDER, STARTED, COMPLETED],
        {"consultant": consultant, "session": session_id},
    )


@path
async def declined_then_reassigned(stage: Stage) -> Walk:
    crew = await team(stage.backend, 2)
    first, second = crew.consultants
    for consultant in crew.consultants:
        await stage.backend.slot(consultant, stage.far)
    request = stage.request(crew, preferred=first)
    handle = await submit(stage.client, request, stage.task_queue)
    await decline(handle, first)
    await booked(handle, second)
    return Walk(
        request.request_id,
        [*ASKED, DECLINED, ASSIGNED, CONFIRMATION_REQUESTED, SCHEDULED, MEETING_READY],
        {"first": first, "second": second},
    )


@path
async def confirmation_timeout(stage: Stage) -> Walk:
    crew = await team(stage.backend, 2)
    first, second = crew.consultants
    for consultant in crew.consultants:
        await stage.backend.slot(consultant, stage.far)
    timings = replace(
        SHORT_TIMINGS, confirmation_timeout_seconds=5, confirmation_reminder_before_seconds=2
    )
    request = stage.request(crew, preferred=first, timings=timings)
    handle = await submit(stage.client, request, stage.task_queue)
    # The first consultant never answers; the second confirms well before a reminder.
    await booked(handle, second)
    return Walk(
        request.request_id,
        [
            *ASKED,
            CONFIRMATION_REMINDER,
            CONFIRMATION_EXPIRED,
            ASSIGNED,
            CONFIRMATION_REQUESTED,
            SCHEDULED,
            MEETING_READY,
        ],
        {"first": first, "second": second},
    )


@path
async def attempts_exhausted(stage: Stage) -> Walk:
    crew = await team(stage.backend, 3)
    for consultant in crew.consultants:
        await stage.backend.slot(consultant, stage.far)
    timings = replace(SHORT_TIMINGS, max_attempts=2)
    request = stage.request(crew, timings=timings)
    handle = await submit(stage.client, request, stage.task_queue)
    for _ in range(2):
        asked = await details_when(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
        assert asked.assigned_consultant_id is not None
        await decline(handle, asked.assigned_consultant_id)
    result = await handle.result()
    assert result.status is RequestStatus.REJECTED
    return Walk(
        request.request_id, [*ASKED, DECLINED, ASSIGNED, CONFIRMATION_REQUESTED, DECLINED, REJECTED]
    )


@path
async def no_consultant_available(stage: Stage) -> Walk:
    crew = await team(stage.backend, 1)  # nobody has a free slot
    request = stage.request(
        crew,
        window_end=stage.now + timedelta(minutes=1, seconds=3),
        duration_minutes=1,
    )
    handle = await submit(stage.client, request, stage.task_queue)
    result = await handle.result()
    assert result.status is RequestStatus.REJECTED
    return Walk(request.request_id, [REQUESTED, REJECTED])


@path
async def cancelled_while_pending(stage: Stage) -> Walk:
    crew, consultant = await one_consultant(stage, stage.far)
    request = stage.request(crew)
    handle = await submit(stage.client, request, stage.task_queue)
    await details_when(handle, lambda d: d.status is RequestStatus.PENDING_CONFIRMATION)
    await handle.execute_update(
        ConsultationWorkflow.cancel,
        CancelRequest(party=Party.REQUESTER, actor_id=request.requester_id),
    )
    await handle.result()
    [slot] = await stage.backend.slots_of(consultant)
    assert slot.status == "available"
    return Walk(
        request.request_id, [*ASKED, REQUEST_CANCELLED], {"requester": request.requester_id}
    )


@path
async def cancelled_after_scheduled(stage: Stage) -> Walk:
    crew, consultant = await one_consultant(stage, stage.far)
    request = stage.request(crew)
    handle = await submit(stage.client, request, stage.task_queue)
    session_id = await booked(handle, consultant)
    await handle.execute_update(
        ConsultationWorkflow.cancel,
        CancelRequest(
            party=Party.CONSULTANT,
            actor_id=consultant,
            reason=CancellationReason.CONSULTANT_UNAVAILABLE,
        ),
    )
    await handle.result()
    return Walk(
        request.request_id,
        [*BOOKED, SESSION_CANCELLED, REQUEST_CANCELLED],
        {"consultant": consultant, "session": session_id},
    )


@path
async def rescheduled(stage: Stage) -> Walk:
    crew, consultant = await one_consultant(stage, stage.far)
    later = await stage.backend.slot(consultant, stage.far + timedelta(hours=2))
    request = stage.request(crew)
    handle = await submit(stage.client, request, stage.task_queue)
    session_id = await booked(handle, consultant)
    await handle.execute_update(
        ConsultationWorkflow.reschedule,
        RescheduleRequest(party=Party.REQUESTER, actor_id=request.requester_id, slot_id=later),
    )
    return Walk(request.request_id, [*BOOKED, RESCHEDULED], {"session": session_id})


@path
async def no_show_reported(stage: Stage) -> Walk:
    crew, consultant = await one_consultant(stage, stage.soon)
    request = stage.request(crew, duration_minutes=1)
    handle = await submit(stage.client, request, stage.task_queue)
    await booked(handle, consultant)
    await wait_for_event(
        stage.sessions, request.request_id, STARTED, within=until(stage.soon) + WAIT
    )
    operator = uuid.uuid4()
    # Accepted once the grace period after the start is over.
    await retry_rejected(
        lambda: handle.execute_update(
            ConsultationWorkflow.report_no_show,
            NoShowReport(
                party=Party.OPERATOR, actor_id=operator, absent=ParticipantRole.CONSULTANT
            ),
        ),
        retry_on=ErrorType.INVALID_STATE,
    )
    return Walk(request.request_id, [*BOOKED, STARTED, NO_SHOW], {"operator": operator})


@path
async def no_show_from_attendance(stage: Stage) -> Walk:
    """The platform says the consultant joined; the learner never does."""
    crew, consultant = await one_consultant(stage, stage.soon)
    request = stage.request(crew, duration_minutes=1)
    handle = await submit(stage.client, request, stage.task_queue)
    session_id = await booked(handle, consultant)
    joined = meeting_event(
        "participant.joined", await meeting_of(stage, session_id), role="consultant"
    )
    response = await post_meeting_event(stage.http, joined)
    assert response.json() == {"status": "accepted", "reason": None}
    await wait_for_event(
        stage.sessions, request.request_id, NO_SHOW, within=until(stage.soon) + WAIT
    )
    row = await session_row(stage.sessions, session_id)
    assert row.status == "no_show_user"
    assert row.consultant_joined_at is not None
    assert row.learner_joined_at is None
    return Walk(request.request_id, [*BOOKED, STARTED, NO_SHOW])


@path
async def meeting_platform_fails(stage: Stage) -> Walk:
    crew, consultant = await one_consultant(stage, stage.far)
    request = stage.request(crew)
    handle = await submit(stage.client, request, stage.refusing_queue)
    await confirm(handle, consultant)
    result = await handle.result()
    assert result.status is RequestStatus.CANCELLED
    [slot] = await stage.backend.slots_of(consultant)
    assert slot.status == "available"
    return Walk(request.request_id, [*ASKED, SCHEDULED, SESSION_CANCELLED, REQUEST_CANCELLED])


@path
async def meeting_late(stage: Stage) -> Walk:
    """The platform is down for a moment: the session stays booked, its link is late."""
    crew, consultant = await one_consultant(stage, stage.far)
    request = stage.request(crew)
    handle = await submit(stage.client, request, stage.late_queue)
    await confirm(handle, consultant)
    ready = await details_when(handle, lambda d: d.meeting_ready, within=WAIT)
    assert ready.status is RequestStatus.SCHEDULED
    await handle.execute_update(
        ConsultationWorkflow.cancel,
        CancelRequest(party=Party.REQUESTER, actor_id=request.requester_id),
    )
    await handle.result()
    return Walk(
        request.request_id,
        [*BOOKED[:-1], MEETING_PENDING, MEETING_READY, SESSION_CANCELLED, REQUEST_CANCELLED],
    )


# --- running them all ----------------------------------------------------------------


@dataclass
class Run:
    walks: dict[str, Walk | BaseException]
    events: list[DomainEvent]
    received: list[Received]
    secrets: dict[str, str]

    def walk(self, name: str) -> Walk:
        walk = self.walks[name]
        if isinstance(walk, BaseException):
            raise walk
        return walk

    def delivered(self, subscriber: str) -> list[Received]:
        return [r for r in self.received if r.path == subscriber and 200 <= r.answered < 300]

    def envelopes(self, subscriber: str, request_id: uuid.UUID) -> list[dict[str, Any]]:
        """What the subscriber accepted for the request, in arrival order, verified."""
        webhook = Webhook(self.secrets[subscriber])
        verified = [webhook.verify(r.body, r.headers) for r in self.delivered(subscriber)]
        return [
            envelope
            for envelope in verified
            if envelope["data"]["consultation_request_id"] == str(request_id)
        ]


@pytest.fixture(scope="module")
async def run(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Run]:
    async with AsyncExitStack() as stack:
        sessions = await stack.enter_async_context(module_database(engine))
        env = await stack.enter_async_context(dev_server())
        task_queue = await stack.enter_async_context(worker(env.client, sessions, settings))
        refusing_queue = await stack.enter_async_context(
            worker(env.client, sessions, settings, RefusingPlatform())
        )
        late_queue = await stack.enter_async_context(
            worker(env.client, sessions, settings, LatePlatform())
        )
        http = await stack.enter_async_context(api(settings, env.client))

        receiver = Receiver(respond=Outage(FLAKY))
        server = LoopbackServer(receiver)
        await server.start()
        stack.push_async_callback(server.stop)
        tokens = TokenFactory(settings)
        secrets = {
            subscriber: (await create_subscription(http, tokens, receiver.url(subscriber)))[
                "secret"
            ]
            for subscriber in (STEADY, FLAKY)
        }
        dispatcher = WebhookDispatcher(sessions, settings.model_copy(update=PATIENT_DELIVERY))
        stack.push_async_callback(dispatcher.aclose)
        await stack.enter_async_context(running(dispatcher))

        now = datetime.now(UTC)
        stage = Stage(
            client=env.client,
            task_queue=task_queue,
            refusing_queue=refusing_queue,
            late_queue=late_queue,
            backend=Backend(sessions),
            sessions=sessions,
            http=http,
            now=now,
            soon=ceil_to_minute(now + LEAD),
            far=(now + timedelta(days=1)).replace(minute=0, second=0, microsecond=0),
        )
        outcomes = await asyncio.gather(
            *(drive(stage) for drive in PATHS.values()), return_exceptions=True
        )
        events = await outbox(sessions)

        async def all_delivered() -> bool:
            rows = await deliveries(sessions)
            done = [row for row in rows if row.status == DeliveryStatus.SUCCEEDED.value]
            return len(done) == 2 * len(events)

        await eventually(all_delivered, within=60)
        yield Run(
            walks=dict(zip(PATHS, outcomes, strict=True)),
            events=events,
            received=list(receiver.requests),
            secrets=secrets,
        )


def assert_emitted_and_delivered(run: Run, walk: Walk) -> list[dict[str, Any]]:
    """The outbox holds exactly the path's events, and each subscriber accepted exactly
    those, in that order, signed; returns the envelopes."""
    stored = [event for event in run.events if event.consultation_request_id == walk.request_id]
    assert [event.event_type for event in stored] == walk.expected
    for subscriber in (STEADY, FLAKY):
        envelopes = run.envelopes(subscriber, walk.request_id)
        assert [envelope["type"] for envelope in envelopes] == walk.expected, subscriber
        assert [envelope["id"] for envelope in envelopes] == [str(e.id) for e in stored]
    return run.envelopes(STEADY, walk.request_id)


def data(envelopes: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [envelope["data"] for envelope in envelopes if envelope["type"] == event_type]


# --- the tests -------------------------------------------------------------------------


async def test_happy_path(run: Run) -> None:
    walk = run.walk("happy")
    envelopes = assert_emitted_and_delivered(run, walk)
    [scheduled] = data(envelopes, SCHEDULED)
    assert scheduled["consultant_id"] == str(walk.ids["consultant"])
    assert scheduled["scheduled_session_id"] == str(walk.ids["session"])
    assert [r["seconds_before"] for r in data(envelopes, REMINDER)] == [6, 3]
    [started], [completed] = data(envelopes, STARTED), data(envelopes, COMPLETED)
    # On the session's own clock: at its start (when the timer fired), ended by the platform.
    start, started_at = (
        datetime.fromisoformat(scheduled["start"]),
        datetime.fromisoformat(started["at"]),
    )
    assert start <= started_at < start + timedelta(seconds=5)
    assert datetime.fromisoformat(completed["at"]) > started_at


async def test_decline_leads_to_reassignment(run: Run) -> None:
    walk = run.walk("declined_then_reassigned")
    envelopes = assert_emitted_and_delivered(run, walk)
    [declined] = data(envelopes, DECLINED)
    assert declined["consultant_id"] == str(walk.ids["first"])
    assert (declined["attempt"], declined["reason"]) == (1, "schedule_conflict")
    assert [(a["consultant_id"], a["attempt"]) for a in data(envelopes, ASSIGNED)] == [
        (str(walk.ids["first"]), 1),
        (str(walk.ids["second"]), 2),
    ]


async def test_confirmation_timeout_reminds_expires_and_reassigns(run: Run) -> None:
    walk = run.walk("confirmation_timeout")
    envelopes = assert_emitted_and_delivered(run, walk)
    [reminder], [expired] = (
        data(envelopes, CONFIRMATION_REMINDER),
        data(envelopes, CONFIRMATION_EXPIRED),
    )
    assert reminder["consultant_id"] == expired["consultant_id"] == str(walk.ids["first"])
    assert (reminder["attempt"], expired["attempt"], expired["reason"]) == (1, 1, None)
    assert data(envelopes, SCHEDULED)[0]["consultant_id"] == str(walk.ids["second"])


async def test_attempts_exhausted_rejects(run: Run) -> None:
    envelopes = assert_emitted_and_delivered(run, run.walk("attempts_exhausted"))
    [rejected] = data(envelopes, REJECTED)
    assert rejected["reason"] == "attempts_exhausted"


async def test_no_consultant_rejects_when_the_window_closes(run: Run) -> None:
    envelopes = assert_emitted_and_delivered(run, run.walk("no_consultant_available"))
    assert data(envelopes, REJECTED)[0]["reason"] == "no_consultant_available"


async def test_cancel_while_pending(run: Run) -> None:
    walk = run.walk("cancelled_while_pending")
    envelopes = assert_emitted_and_delivered(run, walk)
    [cancelled] = data(envelopes, REQUEST_CANCELLED)
    assert cancelled["cancelled_by"] == "requester"
    assert cancelled["actor_id"] == str(walk.ids["requester"])
    assert cancelled["status_reason"] == "cancelled_by_requester"
    assert cancelled["scheduled_session_id"] is None


async def test_cancel_after_scheduled(run: Run) -> None:
    walk = run.walk("cancelled_after_scheduled")
    envelopes = assert_emitted_and_delivered(run, walk)
    [session], [request] = data(envelopes, SESSION_CANCELLED), data(envelopes, REQUEST_CANCELLED)
    for cancelled in (session, request):
        assert cancelled["cancelled_by"] == "consultant"
        assert cancelled["actor_id"] == str(walk.ids["consultant"])
        assert cancelled["reason"] == "consultant_unavailable"
        assert cancelled["scheduled_session_id"] == str(walk.ids["session"])
    assert session["session_status"] == "cancelled_by_consultant"


async def test_reschedule(run: Run) -> None:
    walk = run.walk("rescheduled")
    envelopes = assert_emitted_and_delivered(run, walk)
    [scheduled], [moved] = data(envelopes, SCHEDULED), data(envelopes, RESCHEDULED)
    assert moved["previous_start"] == scheduled["start"]
    assert datetime.fromisoformat(moved["start"]) - datetime.fromisoformat(
        scheduled["start"]
    ) == timedelta(hours=2)
    assert moved["rescheduled_by"] == "requester"


async def test_no_show_reported_by_an_operator(run: Run) -> None:
    walk = run.walk("no_show_reported")
    envelopes = assert_emitted_and_delivered(run, walk)
    [no_show] = data(envelopes, NO_SHOW)
    assert no_show["absent"] == "consultant"
    assert no_show["reported_by"] == "operator"
    assert no_show["actor_id"] == str(walk.ids["operator"])


async def test_no_show_from_the_platforms_attendance(run: Run) -> None:
    envelopes = assert_emitted_and_delivered(run, run.walk("no_show_from_attendance"))
    [no_show] = data(envelopes, NO_SHOW)
    assert (no_show["absent"], no_show["reported_by"], no_show["actor_id"]) == (
        "learner",
        "system",
        None,
    )


async def test_meeting_platform_failure_is_compensated(run: Run) -> None:
    envelopes = assert_emitted_and_delivered(run, run.walk("meeting_platform_fails"))
    [session], [request] = data(envelopes, SESSION_CANCELLED), data(envelopes, REQUEST_CANCELLED)
    assert (session["cancelled_by"], session["reason"]) == ("system", "meeting_platform_failure")
    assert session["session_status"] == "cancelled"
    assert request["status_reason"] == "meeting_platform_failure"


async def test_a_late_meeting_is_announced_before_it_is_ready(run: Run) -> None:
    envelopes = assert_emitted_and_delivered(run, run.walk("meeting_late"))
    [pending], [ready] = data(envelopes, MEETING_PENDING), data(envelopes, MEETING_READY)
    assert pending["start"] == ready["start"]
    deadline = datetime.fromisoformat(pending["deadline"])
    assert deadline == datetime.fromisoformat(pending["start"]) - timedelta(minutes=15)


async def test_every_event_is_delivered_once_to_each_subscriber(run: Run) -> None:
    stored = [str(event.id) for event in run.events]
    for subscriber in (STEADY, FLAKY):
        accepted = Counter(r.webhook_id for r in run.delivered(subscriber))
        assert accepted == Counter(stored), subscriber
    # The flaky one really failed for a while, and every attempt was signed.
    assert any(r.answered == 503 for r in run.received if r.path == FLAKY)
    for received in run.received:
        verified = Webhook(run.secrets[received.path]).verify(received.body, received.headers)
        assert verified["id"] == received.webhook_id


async def test_a_retry_is_tried_only_after_the_previous_event_got_through(run: Run) -> None:
    """Per request and subscriber, no event is sent before the one before it succeeded."""
    order = {str(event.id): index for index, event in enumerate(run.events)}
    request_of = {str(event.id): event.consultation_request_id for event in run.events}
    for subscriber in (STEADY, FLAKY):
        done: dict[object, int] = defaultdict(lambda: -1)
        for received in (r for r in run.received if r.path == subscriber):
            request = request_of[received.webhook_id]
            assert order[received.webhook_id] > done[request]
            if received.answered == 200:
                done[request] = order[received.webhook_id]


async def test_nothing_else_was_emitted(run: Run) -> None:
    """Every event in the outbox belongs to one of the paths above."""
    requests = {run.walk(name).request_id for name in PATHS}
    assert {event.consultation_request_id for event in run.events} == requests
    assert len(run.events) == sum(len(run.walk(name).expected) for name in PATHS)
