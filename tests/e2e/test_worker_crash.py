"""A worker killed mid-flight loses nothing: the real worker process (``python -m
booking.cli worker``) is SIGKILLed twice while fifty requests are being assigned,
cancelled and confirmed, and restarted each time. Every request still reaches the
state it was driven to, with exactly one session and one meeting per booking."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking.settings import Settings
from tests.e2e.support import Actor, Service, assert_no_double_booking, days_ahead, wait_until
from tests.support.worker_process import WorkerProcess, worker_environment

pytestmark = pytest.mark.e2e

IN_FLIGHT = 50
CANCELLED = 10
RECOVERY = 60.0
"""Seconds to recover from a kill: the server re-dispatches a dead worker's workflow
tasks after their timeout (10 s) and its activities after theirs."""


@pytest.fixture
def worker_process(e2e_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(worker_environment(e2e_settings), tmp_path / "worker.log")
    yield process
    process.stop()


async def _meeting_ready_events(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT scheduled_session_id, count(*) FROM domain_events "
                "WHERE event_type = 'session.meeting_ready' GROUP BY scheduled_session_id"
            )
        )
        return {str(session_id): count for session_id, count in rows}


async def test_requests_survive_worker_kills(
    service: Service,
    worker_process: WorkerProcess,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    service_type = await service.service_type()
    consultants = [await service.consultant() for _ in range(5)]
    slots: list[tuple[Actor, uuid.UUID]] = []
    for index in range(IN_FLIGHT):
        consultant = consultants[index % len(consultants)]
        start = days_ahead(2 + index // 10, hour=8) + timedelta(hours=index % 10)
        slot = await service.slot(consultant, start, start + timedelta(hours=1))
        slots.append((consultant, slot))
    learners = [service.learner() for _ in range(IN_FLIGHT)]

    worker_process.start()
    submitted = await asyncio.gather(
        *(
            service.submit(learner, {"service_type_id": service_type, "slot_id": slot})
            for learner, (_, slot) in zip(learners, slots, strict=True)
        )
    )
    assert [r.status_code for r in submitted] == [201] * IN_FLIGHT, [r.text for r in submitted]
    ids = [r.json()["id"] for r in submitted]

    # Killed while the requests are being assigned; cancellations sent while no
    # worker runs wait for the next one.
    worker_process.kill()
    cancelling = [
        asyncio.create_task(service.act(learner, request_id, "cancel"))
        for learner, request_id in zip(learners[-CANCELLED:], ids[-CANCELLED:], strict=True)
    ]
    worker_process.start()
    cancelled = await asyncio.gather(*cancelling)
    assert [r.status_code for r in cancelled] == [200] * CANCELLED, [r.text for r in cancelled]

    booked_ids = ids[:-CANCELLED]
    await asyncio.gather(
        *(
            service.wait_offered(request_id, consultant)
            for request_id, (consultant, _) in zip(booked_ids, slots, strict=False)
        )
    )

    # Killed again while the consultants' confirmations are being booked.
    confirming = [
        asyncio.create_task(service.act(consultant, request_id, "confirm"))
        for request_id, (consultant, _) in zip(booked_ids, slots, strict=False)
    ]
    await asyncio.wait(confirming, return_when=asyncio.FIRST_COMPLETED)
    worker_process.kill()
    worker_process.start()
    confirmed: list[httpx.Response] = await asyncio.gather(*confirming)
    assert [r.status_code for r in confirmed] == [200] * len(booked_ids), [
        r.text for r in confirmed if r.status_code != 200
    ]

    async def states() -> list[tuple[str, bool]]:
        requests = await asyncio.gather(*(service.request(i) for i in ids))
        sessions = await asyncio.gather(
            *(service.session(r["session_id"]) for r in requests if r["session_id"])
        )
        ready = {s["request_id"] for s in sessions if s["join_url"]}
        return [(r["status"], r["id"] in ready) for r in requests]

    final = await wait_until(
        states,
        lambda found: (
            found == [("scheduled", True)] * len(booked_ids) + [("cancelled", False)] * CANCELLED
        ),
        within=RECOVERY,
        what="every request in its final state",
    )
    assert worker_process.starts == 3
    assert len(final) == IN_FLIGHT
    await assert_no_double_booking(session_factory)
    meetings = await _meeting_ready_events(session_factory)
    assert sorted(meetings.values()) == [1] * len(booked_ids)
    for request_id, (consultant, slot) in zip(booked_ids, slots, strict=False):
        request = await service.request(request_id)
        session = await service.session(request["session_id"])
        assert (session["slot_id"], session["consultant_id"]) == (
            str(slot),
            str(consultant.user_id),
        )
        assert meetings[session["id"]] == 1
