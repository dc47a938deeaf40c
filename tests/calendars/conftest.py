"""Fixtures of the calendar tests: the ICS server on loopback, the sync activities on
a fixed clock, a consultant on the Berlin clock, and a worker running the sync
workflow on the dev server, on a task queue of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.calendars import CalendarActivities
from core.settings import Settings
from tests.calendars.support import NOW, IcsServer, SessionFactory, berlin_consultant
from tests.support.loopback import LoopbackServer
from workflows.calendar_sync import CalendarSyncWorkflow


@pytest.fixture
async def ics_server() -> AsyncIterator[IcsServer]:
    app = IcsServer()
    server = LoopbackServer(app)
    await server.start()
    try:
        yield app
    finally:
        await server.stop()


@pytest.fixture
async def calendar_activities(
    session_factory: SessionFactory, settings: Settings
) -> AsyncIterator[CalendarActivities]:
    activities = CalendarActivities(session_factory, settings, clock=lambda: NOW)
    yield activities
    await activities.aclose()


@pytest.fixture
async def consultant(session_factory: SessionFactory) -> uuid.UUID:
    return await berlin_consultant(session_factory)


@pytest.fixture
def sync_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_task_queue": f"calendars-{uuid.uuid4()}"})


@pytest.fixture
async def sync_worker(
    sync_settings: Settings, dev_env: WorkflowEnvironment, session_factory: SessionFactory
) -> AsyncIterator[None]:
    """The calendar sync workflow and its activities (on the real clock), served on
    ``sync_settings``' task queue while the test runs."""
    activities = CalendarActivities(session_factory, sync_settings)
    async with Worker(
        dev_env.client,
        task_queue=sync_settings.temporal_task_queue,
        workflows=[CalendarSyncWorkflow],
        activities=[activities.list_calendars, activities.sync_calendar],
    ):
        yield
    await activities.aclose()
