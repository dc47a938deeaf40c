"""The open-request cap holds under concurrent submissions, also when they reach
different API processes: it is counted again where the request is stored, under a lock
on the learner in the inserting transaction, not only before the start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.submissions import request_id_for
from core.settings import Settings
from db.models import ConsultationRequest, ConsultationRequestDraft
from tests.e2e.support import Service
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory
from workflows.contracts.names import workflow_id_for

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("worker")]

CAP = 2
SUBMISSIONS = 8


@pytest.fixture
async def capped(
    e2e_settings: Settings,
    dev_env: WorkflowEnvironment,
    clean_database: AsyncEngine,
    tokens: TokenFactory,
) -> AsyncIterator[Service]:
    settings = e2e_settings.model_copy(update={"max_open_requests_per_learner": CAP})
    app = create_app(settings, temporal=dev_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://capped") as http:
            yield Service(http, tokens)


@pytest.fixture
async def second_api(
    e2e_settings: Settings, dev_env: WorkflowEnvironment, capped: Service, tokens: TokenFactory
) -> AsyncIterator[Service]:
    """Another API app over the same database and Temporal: another process's engine,
    pool and early count."""
    settings = e2e_settings.model_copy(update={"max_open_requests_per_learner": CAP})
    app = create_app(settings, temporal=dev_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://second") as http:
            yield Service(http, tokens)


async def _count(sessions: async_sessionmaker[AsyncSession], model: type, *where: Any) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def test_concurrent_submissions_beyond_the_cap_store_exactly_the_cap(
    capped: Service,
    dev_env: WorkflowEnvironment,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    service_type = await capped.service_type()
    learner = capped.learner()
    keys = [f"cap-{n}" for n in range(SUBMISSIONS)]

    responses = await asyncio.gather(
        *(
            capped.submit(
                learner,
                {"service_type_id": service_type, "details": f"Question {key}"},
                key=key,
            )
            for key in keys
        )
    )

    created = [r for r in responses if r.status_code == 201]
    refused = [key for key, r in zip(keys, responses, strict=True) if r.status_code != 201]
    assert len(created) == CAP, [r.text for r in responses]
    for key, response in zip(keys, responses, strict=True):
        if key in refused:
            problem = assert_problem(response, 429)
            assert problem["limit"] == CAP
            assert response.headers["retry-after"].isdigit()
    mine = ConsultationRequest.requester_user_id == learner.user_id
    assert await _count(session_factory, ConsultationRequest, mine) == CAP
    # A refused submission leaves nothing behind: no row, no draft, no running workflow.
    assert await _count(session_factory, ConsultationRequestDraft) == 0
    for key in refused:
        request_id = request_id_for(learner.user_id, key)
        handle = dev_env.client.get_workflow_handle(workflow_id_for(request_id))
        try:
            status = (await handle.describe()).status
        except RPCError:
            continue  # refused by the API's early count: never started
        assert status is WorkflowExecutionStatus.FAILED


async def test_concurrent_submissions_through_two_api_processes_store_exactly_the_cap(
    capped: Service,
    second_api: Service,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    service_type = await capped.service_type()
    learner = capped.learner()
    apis = (capped, second_api)
    keys = [f"two-apis-{n}" for n in range(SUBMISSIONS)]

    responses = await asyncio.gather(
        *(
            apis[n % 2].submit(
                learner, {"service_type_id": service_type, "details": f"Question {key}"}, key=key
            )
            for n, key in enumerate(keys)
        )
    )

    assert sum(r.status_code == 201 for r in responses) == CAP, [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert assert_problem(response, 429)["limit"] == CAP
    mine = ConsultationRequest.requester_user_id == learner.user_id
    assert await _count(session_factory, ConsultationRequest, mine) == CAP
    assert await _count(session_factory, ConsultationRequestDraft) == 0
