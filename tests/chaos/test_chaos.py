"""Two hundred bookings while the service is being broken (``make chaos``; also part of
``make test``).

Learners submit and consultants confirm through the API (one in ten learners cancels
once the request is offered) while, at random moments, the worker is SIGKILLed and
restarted, the Temporal server is stopped and started again on its file, PostgreSQL
connections in the middle of a reservation are terminated, and the meeting platform
fails or loses one answer in five. When the faults stop, every request must reach
the state its users drove it to, and then:

- no two booked slots or live sessions of a consultant overlap (SQL);
- one session per scheduled request, on the slot it asked for, none for a cancelled
  one;
- one meeting per session on the platform, the one the session links to;
- each request's outbox holds exactly its path's events, once each, and the webhook
  subscriber received every one of them, in order per request;
- no workflow failed and no client ever saw a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from booking.devstack.temporal import TemporalDevServer
from core.settings import Settings
from tests.chaos.faults import ConnectionKiller, TemporalRestart, WorkerKiller
from tests.chaos.journeys import (
    Answers,
    Booking,
    cancel_once_offered,
    confirm_offers,
    submit,
)
from tests.chaos.outcome import BOOKED, BOOKED_LATE, CANCELLED, Outcome, read_outcome
from tests.e2e.support import Actor, Service, assert_no_double_booking, days_ahead, wait_until
from tests.events.receiver import Receiver
from tests.support.database import _asyncpg_dsn
from tests.support.meeting_platform import FakeMeetingPlatform
from tests.support.worker_process import WorkerProcess
from worker import DATABASE_APPLICATION_NAME

pytestmark = pytest.mark.chaos

logger = logging.getLogger("chaos")

BOOKINGS = 200
CONSULTANTS = 20
CANCEL_EVERY = 10
IN_FLIGHT = 40
"""Submissions at once."""
CHAOS_WINDOW = 30.0
"""Seconds from the first submission during which faults happen."""
RECOVERY = 150.0
"""Seconds for every request to settle once the faults stopped: a killed worker's
workflow tasks come back after their timeout (10 s), its meeting calls after theirs
(30 s)."""
DELIVERY = 60.0
SEED = 20261127


async def test_bookings_survive_worker_kills_a_temporal_restart_and_lost_connections(
    service: Service,
    worker_process: WorkerProcess,
    temporal_server: TemporalDevServer,
    temporal_client: Client,
    chaos_settings: Settings,
    meeting_platform: FakeMeetingPlatform,
    subscriber: Receiver,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    rng = random.Random(SEED)
    await _subscribe(service, subscriber)
    bookings = await _plan(service)
    service_type = await service.service_type()

    worker_process.start()
    answers = Answers()
    to_confirm: dict[uuid.UUID, set[str]] = defaultdict(set)
    worker_killer = WorkerKiller(worker_process, random.Random(rng.random()))
    temporal_restart = TemporalRestart(temporal_server, random.Random(rng.random()))
    connection_killer = ConnectionKiller(
        _asyncpg_dsn(chaos_settings.require_database_url()),
        DATABASE_APPLICATION_NAME,
        random.Random(rng.random()),
    )
    stop_faults, stop_consultants = asyncio.Event(), asyncio.Event()
    faults = [
        asyncio.create_task(fault.run(stop_faults))
        for fault in (worker_killer, temporal_restart, connection_killer)
    ]
    consultants = {booking.consultant.user_id: booking.consultant for booking in bookings}
    inboxes = [
        asyncio.create_task(
            confirm_offers(service, answers, consultant, to_confirm[user_id], stop_consultants)
        )
        for user_id, consultant in consultants.items()
    ]
    submitting = asyncio.Semaphore(IN_FLIGHT)

    async def journey(booking: Booking) -> None:
        async with submitting:
            await submit(service, answers, booking, service_type)
        assert booking.request_id is not None
        if booking.cancel:
            await cancel_once_offered(service, answers, booking)
        else:
            to_confirm[booking.consultant.user_id].add(booking.request_id)

    began = time.monotonic()
    try:
        await asyncio.gather(*(journey(booking) for booking in bookings))
        by_id = {booking.request_id or "": booking for booking in bookings}
        assert len(by_id) == BOOKINGS
        cancelled = {request_id for request_id, b in by_id.items() if b.cancel}
        booked = set(by_id) - cancelled
        with_faults = CHAOS_WINDOW - (time.monotonic() - began)
        if with_faults > 0:
            await _settled_or_timeout(session_factory, cancelled, booked, with_faults)
        stop_faults.set()
        await asyncio.gather(*faults)
        worker_killer.supervise()
        outcome = await wait_until(
            lambda: read_outcome(session_factory, set(by_id)),
            lambda found: found.settled(cancelled, booked),
            within=RECOVERY,
            what="every request in its final state",
            every=1.0,
        )
    finally:
        stop_faults.set()
        stop_consultants.set()
        await asyncio.gather(*faults, *inboxes, return_exceptions=True)
    logger.warning(
        "chaos: %d bookings in %.0f s; worker kills %d (own exits %s), Temporal restarts %d, "
        "reserving connections terminated %d; answers %s; meeting create calls %d",
        BOOKINGS,
        time.monotonic() - began,
        worker_killer.kills,
        worker_killer.exits,
        temporal_restart.restarts,
        connection_killer.kills,
        dict(answers.seen),
        sum(meeting_platform.create_calls.values()),
    )

    # The faults did happen.
    assert worker_killer.kills == worker_killer.max_kills
    # A worker started while Temporal was down waited for it instead of exiting.
    assert worker_killer.exits == []
    assert temporal_restart.restarts == 1
    assert connection_killer.kills >= 1
    assert 500 not in answers.seen, answers.seen

    await assert_no_double_booking(session_factory)
    _assert_sessions(outcome, by_id)
    _assert_meetings(outcome, meeting_platform, booked)
    _assert_events(outcome, by_id)
    await _assert_delivered(outcome, subscriber)
    failed = await temporal_client.count_workflows("ExecutionStatus = 'Failed'")
    assert failed.count == 0


async def _subscribe(service: Service, subscriber: Receiver) -> None:
    created = await service.http.post(
        "/v1/webhook-subscriptions",
        json={"url": subscriber.url("/chaos")},
        headers=service.operator.headers,
    )
    assert created.status_code == 201, created.text


async def _plan(service: Service) -> list[Booking]:
    """Twenty consultants with ten hour-long slots each, a learner per slot."""
    bookings: list[Booking] = []
    first = days_ahead(3, hour=8)
    for _ in range(CONSULTANTS):
        consultant = await service.consultant()
        starts = [first + timedelta(hours=h) for h in range(BOOKINGS // CONSULTANTS)]
        slot_ids = await _slots(service, consultant, starts)
        for start in starts:
            index = len(bookings)
            bookings.append(
                Booking(
                    index,
                    service.learner(),
                    consultant,
                    slot_ids[start.isoformat()],
                    cancel=index % CANCEL_EVERY == CANCEL_EVERY - 1,
                )
            )
    return bookings


async def _slots(
    service: Service, consultant: Actor, starts: list[datetime]
) -> dict[str, uuid.UUID]:
    created = await service.http.post(
        f"/v1/consultants/{consultant.user_id}/availability",
        json={
            "slots": [
                {"start_time": s.isoformat(), "end_time": (s + timedelta(hours=1)).isoformat()}
                for s in starts
            ]
        },
        headers=service.operator.headers,
    )
    assert created.status_code == 201, created.text
    return {
        datetime.fromisoformat(item["start_time"]).isoformat(): uuid.UUID(item["id"])
        for item in created.json()["items"]
    }


async def _settled_or_timeout(
    sessions: async_sessionmaker[AsyncSession], cancelled: set[str], booked: set[str], within: float
) -> None:
    """Faults go on until every request settled or the window closed."""
    # wait_until reports a timeout as a failed assertion; here it only ends the window.
    with contextlib.suppress(AssertionError):
        await wait_until(
            lambda: read_outcome(sessions, cancelled | booked),
            lambda found: found.settled(cancelled, booked),
            within=within,
            what="settled",
            every=1.0,
        )


def _assert_sessions(outcome: Outcome, by_id: dict[str, Booking]) -> None:
    for request_id, booking in by_id.items():
        found = outcome.sessions.get(request_id, [])
        if booking.cancel:
            assert found == [], (request_id, found)
            continue
        assert len(found) == 1, (request_id, found)
        (session,) = found
        assert (session.status, session.slot_id, session.consultant_id) == (
            "scheduled",
            booking.slot_id,
            booking.consultant.user_id,
        )


def _assert_meetings(outcome: Outcome, platform: FakeMeetingPlatform, booked: set[str]) -> None:
    for request_id in booked:
        (session,) = outcome.sessions[request_id]
        meetings = platform.meetings_for(str(session.id))
        assert len(meetings) == 1, (session, meetings)
        (meeting,) = meetings
        assert (session.meeting_id, session.join_url) == (meeting.id, meeting.join_url)
    assert len(platform.meetings) == len(booked)


def _assert_events(outcome: Outcome, by_id: dict[str, Booking]) -> None:
    for request_id, booking in by_id.items():
        paths = [CANCELLED] if booking.cancel else [BOOKED, BOOKED_LATE]
        expected = [[str(t) for t in path] for path in paths]
        assert outcome.event_types(request_id) in expected, request_id


async def _assert_delivered(outcome: Outcome, subscriber: Receiver) -> None:
    """Every outbox event reached the subscriber (at least once), each request's in order."""
    expected = {str(e.id) for events in outcome.events.values() for e in events}

    async def received() -> set[str]:
        return {r.webhook_id for r in subscriber.requests if r.answered == 200}

    await wait_until(
        received,
        lambda got: expected <= got,
        within=DELIVERY,
        what="every event delivered",
        every=0.5,
    )
    first_seen: dict[str, int] = {}
    for position, request in enumerate(subscriber.requests):
        first_seen.setdefault(request.webhook_id, position)
    for request_id, events in outcome.events.items():
        order = [first_seen[str(e.id)] for e in events]
        assert order == sorted(order), request_id
