"""A learner's open requests are capped, so nobody can hold a consultant's whole week."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.app import create_app
from core.settings import Settings
from core.vocabulary import RequestStatus
from db.models import ConsultationRequest
from tests.activities.builders import Backend, future
from tests.support.problems import assert_problem
from tests.support.tokens import TokenFactory

CAP = 2


@pytest.fixture
async def capped_client(
    settings: Settings, unreachable_temporal: Client, clean_database: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    capped = settings.model_copy(update={"max_open_requests_per_learner": CAP})
    application: FastAPI = create_app(capped, temporal=unreachable_temporal)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def test_a_learner_at_the_cap_gets_429_before_anything_starts(
    capped_client: httpx.AsyncClient,
    tokens: TokenFactory,
    session_factory: async_sessionmaker[AsyncSession],
) -> None:
    backend = Backend(session_factory)
    learner = uuid.uuid4()
    service_type = await backend.service_type()
    open_ids = [
        await backend.request(
            service_type, window_start=future(2), window_end=future(9), requester_id=learner
        )
        for _ in range(CAP)
    ]
    body = {"service_type_id": str(service_type)}
    headers = tokens.headers("learner", sub=learner)

    refused = await capped_client.post("/v1/consultation-requests", json=body, headers=headers)
    problem = assert_problem(refused, 429)
    assert problem["open_requests"] == CAP
    assert problem["limit"] == CAP
    assert refused.headers["retry-after"].isdigit()

    # Another learner is not affected: their submission reaches the (unreachable) workflow.
    other = await capped_client.post(
        "/v1/consultation-requests", json=body, headers=tokens.headers("learner")
    )
    assert_problem(other, 503)

    # Once a request has ended it no longer counts.
    async with session_factory() as session, session.begin():
        await session.execute(
            update(ConsultationRequest)
            .where(ConsultationRequest.id == open_ids[0])
            .values(status=RequestStatus.CANCELLED.value)
        )
    after = await capped_client.post("/v1/consultation-requests", json=body, headers=headers)
    assert_problem(after, 503)
