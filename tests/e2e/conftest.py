"""End to end: the API app with a real Temporal client, a real worker and PostgreSQL.

One Temporal dev server serves the whole test session (``dev_env``); each test gets
a task queue and an in-process worker of its own, so workflows a test leaves
running never touch the next test's (emptied) database. Durations are short so a
lifecycle takes seconds: the minimum notice is a second, starts default to any whole
minute, and sessions booked days ahead keep every cutoff and reminder out of the way.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from core.settings import Settings
from tests.e2e.support import Service
from tests.support.tokens import TokenFactory
from worker import build_worker


@pytest.fixture(scope="session")
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "confirmation_timeout": timedelta(seconds=60),
            "minimum_notice": timedelta(seconds=1),
            # Any whole minute, so a session can start right away; the tests of the
            # start grid give their service types a step of their own.
            "default_start_interval": timedelta(minutes=1),
            "no_show_grace": timedelta(seconds=1),
            # Long, so nothing is re-assigned behind a test's back; an operator's
            # assign wakes a waiting request at once anyway.
            "assignment_retry_interval": timedelta(minutes=10),
        }
    )


@pytest.fixture
def e2e_settings(settings: Settings, dev_env: WorkflowEnvironment) -> Settings:
    return settings.model_copy(
        update={
            "temporal_task_queue": f"e2e-{uuid.uuid4()}",
            "temporal_address": dev_env.client.service_client.config.target_host,
        }
    )


@pytest.fixture
async def worker(
    dev_env: WorkflowEnvironment,
    e2e_settings: Settings,
    session_factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Worker]:
    async with build_worker(dev_env.client, e2e_settings, session_factory) as running:
        yield running


@pytest.fixture
async def http(
    e2e_settings: Settings, dev_env: WorkflowEnvironment, clean_database: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(e2e_settings, temporal=dev_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def service(http: httpx.AsyncClient, tokens: TokenFactory) -> Service:
    return Service(http, tokens)
