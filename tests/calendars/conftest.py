"""Fixtures of the calendar tests: the ICS server on loopback, the sync activities on
a fixed clock, a consultant on the Berlin clock, and the API as that consultant."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from activities.calendars import CalendarActivities
from core.settings import Settings
from tests.calendars.support import NOW, IcsServer, SessionFactory, berlin_consultant
from tests.support.loopback import LoopbackServer


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
