"""Fixtures for events and integrations: fast retry settings, a loopback receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from integrations.webhooks.dispatcher import WebhookDispatcher
from tests.events.receiver import Receiver
from tests.support.loopback import LoopbackServer

MEETING_SECRET = "meeting-platform-shared-secret-for-tests"


@pytest.fixture(scope="session")
def settings(settings: Settings) -> Settings:
    """The suite's settings with retries in milliseconds and inbound webhooks configured."""
    return settings.model_copy(
        update={
            "meeting_webhook_secret": SecretStr(MEETING_SECRET),
            "webhook_max_attempts": 4,
            "webhook_backoff_base": timedelta(milliseconds=20),
            "webhook_backoff_max": timedelta(milliseconds=80),
            "webhook_timeout": timedelta(seconds=2),
            "webhook_poll_interval": timedelta(milliseconds=10),
        }
    )


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    server = LoopbackServer(endpoint)
    await server.start()
    yield endpoint
    await server.stop()


DispatcherFactory = Callable[..., WebhookDispatcher]


@pytest.fixture
async def make_dispatcher(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> AsyncIterator[DispatcherFactory]:
    """Dispatchers on the test database; keyword arguments override settings."""
    made: list[WebhookDispatcher] = []

    def make(**overrides: Any) -> WebhookDispatcher:
        dispatcher = WebhookDispatcher(session_factory, settings.model_copy(update=overrides))
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        await dispatcher.aclose()
