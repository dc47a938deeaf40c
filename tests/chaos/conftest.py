"""The whole service with parts that can be broken: a Temporal dev server of its own
with file persistence (so it can be restarted), the real worker as a child process,
the API in process with a real Temporal client, a meeting platform and a webhook
subscriber on loopback. PostgreSQL is the suite's."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.app import create_app
from booking.devstack.ports import free_port
from booking.devstack.temporal import TemporalDevServer
from core.settings import Settings
from tests.e2e.support import Service
from tests.events.receiver import Receiver
from tests.support.loopback import LoopbackApp, LoopbackServer
from tests.support.meeting_platform import FakeMeetingPlatform
from tests.support.tokens import TokenFactory
from tests.support.worker_process import WorkerProcess, worker_environment


@pytest.fixture(scope="session")
def settings(settings: Settings) -> Settings:
    """Nothing in the lifecycle may expire during the run: a consultant who confirms
    late because a fault delayed them must still find the request waiting."""
    return settings.model_copy(
        update={
            "confirmation_timeout": timedelta(minutes=30),
            "minimum_notice": timedelta(seconds=1),
            "assignment_retry_interval": timedelta(minutes=30),
        }
    )


@pytest.fixture
def temporal_server() -> Iterator[TemporalDevServer]:
    # Not under tmp_path (0700): nothing else needs it, but the file must outlive
    # one server process and be found by the next.
    directory = Path(tempfile.mkdtemp(prefix="booking-chaos-temporal-"))
    server = TemporalDevServer(
        free_port(),
        ui=False,
        db_file=directory / "temporal.db",
        log_file=directory / "temporal.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def temporal_client(temporal_server: TemporalDevServer) -> Client:
    return await Client.connect(temporal_server.address)


@pytest.fixture
def chaos_settings(settings: Settings, temporal_server: TemporalDevServer) -> Settings:
    return settings.model_copy(
        update={
            "temporal_address": temporal_server.address,
            "temporal_task_queue": f"chaos-{uuid.uuid4()}",
        }
    )


@asynccontextmanager
async def serving(app: LoopbackApp) -> AsyncIterator[None]:
    server = LoopbackServer(app)
    await server.start()
    try:
        yield
    finally:
        await server.stop()


@pytest.fixture
async def meeting_platform() -> AsyncIterator[FakeMeetingPlatform]:
    """One create call in ten fails before, and one in ten after, creating the meeting."""
    platform = FakeMeetingPlatform(refuse_share=0.1, lose_share=0.1, seed=20261127)
    async with serving(platform):
        yield platform


@pytest.fixture
async def subscriber() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    async with serving(receiver):
        yield receiver


@pytest.fixture
def worker_process(
    chaos_settings: Settings, meeting_platform: FakeMeetingPlatform, tmp_path: Path
) -> Iterator[WorkerProcess]:
    environment = worker_environment(
        chaos_settings,
        BOOKING_MEETING_PROVIDER="http",
        BOOKING_MEETING_API_URL=meeting_platform.base_url,
        BOOKING_MEETING_API_TIMEOUT="5",
        BOOKING_WEBHOOK_POLL_INTERVAL="0.05",
        BOOKING_WEBHOOK_BACKOFF_BASE="0.1",
        BOOKING_WEBHOOK_BACKOFF_MAX="1",
        BOOKING_WEBHOOK_MAX_ATTEMPTS="100",
    )
    process = WorkerProcess(environment, tmp_path / "worker.log")
    yield process
    process.stop()


@pytest.fixture
async def service(
    chaos_settings: Settings,
    temporal_client: Client,
    clean_database: AsyncEngine,
    tokens: TokenFactory,
) -> AsyncIterator[Service]:
    app = create_app(chaos_settings, temporal=temporal_client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Service(http, tokens)
