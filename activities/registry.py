"""Builds the activity callables a worker registers, bound to their dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from booking.settings import Settings


def build_activities(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> list[Callable[..., Any]]:
    """Every activity of the service, as bound methods of their dependency holders."""
    del session_factory, settings  # the consultation activities land with the workflow
    return []
