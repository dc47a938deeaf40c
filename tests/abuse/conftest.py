"""The abuse tests share one small world per module (see ``tests/abuse/world.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.abuse.world import World, world_in


@pytest.fixture(scope="module")
async def world(engine: AsyncEngine) -> AsyncIterator[World]:
    async with world_in(engine) as built:
        yield built
