"""Stale request drafts are swept once no workflow can take them; a draft whose
workflow still runs (its worker was down for longer than the TTL) is kept, and the
workflow stores its details when a worker comes back."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from db.drafts import stage_details
from db.models import ConsultationRequest, ConsultationRequestDraft
from tests.activities.builders import Backend
from tests.e2e.support import wait_until
from tests.workflows.support import ConsultationHandle, make_input, start
from worker import build_worker, sweep_drafts_once, workflow_may_take_draft

Sessions = async_sessionmaker[AsyncSession]


async def stage(sessions: Sessions, settings: Settings, *, stale: bool) -> uuid.UUID:
    request_id, requester_id = uuid.uuid4(), uuid.uuid4()
    async with sessions() as session, session.begin():
        await stage_details(
            session, request_id=request_id, requester_id=requester_id, details=f"help {request_id}"
        )
        if stale:
            await session.execute(
                update(ConsultationRequestDraft)
                .where(ConsultationRequestDraft.request_id == request_id)
                .values(created_at=func.now() - settings.request_draft_ttl - timedelta(minutes=1))
            )
    return request_id


async def requester_of(sessions: Sessions, request_id: uuid.UUID) -> uuid.UUID:
    async with sessions() as session:
        requester: uuid.UUID | None = await session.scalar(
            select(ConsultationRequestDraft.requester_user_id).where(
                ConsultationRequestDraft.request_id == request_id
            )
        )
    assert requester is not None
    return requester


async def drafts_left(sessions: Sessions) -> set[uuid.UUID]:
    async with sessions() as session:
        return set((await session.scalars(select(ConsultationRequestDraft.request_id))).all())


async def nobody_runs(request_id: uuid.UUID) -> bool:
    return False


async def test_only_drafts_older_than_the_ttl_are_swept(
    session_factory: Sessions, settings: Settings
) -> None:
    stale = await stage(session_factory, settings, stale=True)
    fresh = await stage(session_factory, settings, stale=False)

    assert await sweep_drafts_once(session_factory, settings, nobody_runs) == 1
    assert await sweep_drafts_once(session_factory, settings, nobody_runs) == 0
    assert await drafts_left(session_factory) == {fresh}
    assert stale not in await drafts_left(session_factory)


async def test_a_draft_whose_workflow_still_runs_is_kept_and_stored_later(
    session_factory: Sessions, settings: Settings, dev_env: WorkflowEnvironment
) -> None:
    backend = Backend(session_factory)
    service_type = await backend.service_type()
    never_started = await stage(session_factory, settings, stale=True)
    waiting = await stage(session_factory, settings, stale=True)
    closed = await stage(session_factory, settings, stale=True)
    # Not yet started when its worker went down; then no worker polled for a day.
    task_queue = f"drafts-{uuid.uuid4()}"
    now = await dev_env.get_current_time()
    handles: dict[uuid.UUID, ConsultationHandle] = {}
    for request_id in (waiting, closed):
        request = make_input(
            now,
            request_id=request_id,
            requester_id=await requester_of(session_factory, request_id),
            service_type_id=service_type,
            details_staged=True,
        )
        handles[request_id] = await start(dev_env.client, request, task_queue)
    await handles[closed].terminate()
    worker_settings = settings.model_copy(update={"temporal_task_queue": task_queue})

    swept = await sweep_drafts_once(
        session_factory, worker_settings, workflow_may_take_draft(dev_env.client)
    )

    assert swept == 2
    assert await drafts_left(session_factory) == {waiting}
    assert never_started not in await drafts_left(session_factory)
    # The worker is back: the waiting workflow stores the request with its details.
    async with build_worker(dev_env.client, worker_settings, session_factory):

        async def stored() -> str | None:
            async with session_factory() as session:
                details: str | None = await session.scalar(
                    select(ConsultationRequest.request_details).where(
                        ConsultationRequest.id == waiting
                    )
                )
            return details

        assert await wait_until(stored, bool, what="the request stored") == f"help {waiting}"
        await handles[waiting].terminate()
    assert await drafts_left(session_factory) == set()
