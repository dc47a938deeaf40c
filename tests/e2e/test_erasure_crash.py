"""An erasure survives its worker being killed half way: the real ``booking worker``
process is SIGKILLed while the erasure is settling the learner's open requests, and a
new one finishes it; the result is the same as without the crash.

To be sure the kill lands in the middle, one of the learner's open requests is held
(its row locked by the test): cancelling it waits, so the erasure is stuck in its
settling step, some of it done, when the worker dies.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.pseudonyms import pseudonym_for
from core.settings import Settings
from db.models import ConsultationRequest, PersonErasure
from tests.e2e.erasure_support import (
    assert_temporal_holds_none_of,
    learner_footprint,
    leftovers,
    wait_erased,
)
from tests.e2e.support import Service, wait_until
from tests.events.conftest import MEETING_SECRET
from tests.support.worker_process import WorkerProcess, worker_environment

pytestmark = pytest.mark.e2e

SessionFactory = async_sessionmaker[AsyncSession]


@pytest.fixture
def e2e_settings(e2e_settings: Settings) -> Settings:
    return e2e_settings.model_copy(update={"meeting_webhook_secret": SecretStr(MEETING_SECRET)})


@pytest.fixture
def worker_process(e2e_settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    environment = worker_environment(
        e2e_settings, BOOKING_PSEUDONYM_SECRET=e2e_settings.pseudonym_secret.get_secret_value()
    )
    process = WorkerProcess(environment, tmp_path / "worker.log")
    process.start()
    yield process
    process.stop()


async def test_a_worker_killed_mid_erasure_and_restarted_completes_it(
    service: Service,
    session_factory: SessionFactory,
    dev_env: WorkflowEnvironment,
    e2e_settings: Settings,
    worker_process: WorkerProcess,
) -> None:
    footprint = await learner_footprint(service, session_factory, with_deliveries=False)
    person = footprint.learner.user_id
    pseudonym = pseudonym_for(person, e2e_settings.pseudonym_secret.get_secret_value())
    # The erasure settles open requests in id order: hold the later one.
    first, held = sorted(
        uuid.UUID(r) for r in (footprint.open_request, footprint.scheduled_request)
    )
    locked, release = asyncio.Event(), asyncio.Event()

    async def hold_the_open_request() -> None:
        async with session_factory() as session, session.begin():
            await session.execute(
                select(ConsultationRequest.id)
                .where(ConsultationRequest.id == held)
                .with_for_update()
            )
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold_the_open_request())
    await locked.wait()
    try:
        asked = await service.http.post(
            f"/v1/people/{person}/erasure", headers=service.operator.headers
        )
        assert asked.status_code == 202, asked.text

        async def progress() -> tuple[str | None, str]:
            async with session_factory() as session:
                step = await session.scalar(
                    select(PersonErasure.step).where(PersonErasure.pseudonym == pseudonym)
                )
                settled = await session.scalar(
                    select(ConsultationRequest.status).where(ConsultationRequest.id == first)
                )
            return step, str(settled)

        # Part of the work done (the first request cancelled), the rest stuck.
        step, _ = await wait_until(
            progress,
            lambda state: state == ("settling_requests", "cancelled"),
            what="the erasure half way",
        )
        worker_process.kill()
        assert step == "settling_requests"
    finally:
        release.set()
        await holder

    worker_process.start()
    done = await wait_erased(service, person, within=120.0)
    assert done["step"] == "completed"
    assert worker_process.starts == 2

    assert await leftovers(session_factory, [str(person), *footprint.free_texts]) == {}
    async with session_factory() as session:
        statuses = dict(
            (
                await session.execute(
                    select(ConsultationRequest.id, ConsultationRequest.status_reason).where(
                        ConsultationRequest.requester_user_id == pseudonym
                    )
                )
            ).all()
        )
    assert statuses[first] == statuses[held] == "account_erased"
    await assert_temporal_holds_none_of(
        dev_env.client, person, footprint.request_ids, [footprint.export_id]
    )
