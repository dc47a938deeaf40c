"""Housekeeping the worker runs beside its workflows."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.drafts import sweep_stale_drafts
from core.settings import Settings

logger = logging.getLogger(__name__)


async def sweep_drafts_once(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> int:
    async with session_factory() as session, session.begin():
        swept = await sweep_stale_drafts(
            session, older_than=datetime.now(UTC) - settings.request_draft_ttl
        )
    if swept:
        logger.info("deleted %d stale request drafts", swept)
    return swept


async def run_draft_sweeper(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings, stop: asyncio.Event
) -> None:
    """Sweep until ``stop`` is set. Several workers may sweep at once: a DELETE is idempotent."""
    interval = settings.request_draft_sweep_interval.total_seconds()
    while not stop.is_set():
        try:
            await sweep_drafts_once(session_factory, settings)
        except Exception:
            # The database may be restarting; the next round catches up.
            logger.exception("sweeping request drafts failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
