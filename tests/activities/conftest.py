"""The activities run against the real PostgreSQL of ``tests/conftest.py``
(``database_url`` / ``session_factory``: migrated once, emptied after each test)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.activities.builders import Backend


@pytest.fixture
def backend(session_factory: async_sessionmaker[AsyncSession]) -> Backend:
    return Backend(session_factory)
