"""Stale request drafts are swept; fresh ones (a submission in flight) are kept."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from db.drafts import stage_details
from db.models import ConsultationRequestDraft
from worker import sweep_drafts_once


async def test_only_drafts_older_than_the_ttl_are_swept(
    session_factory: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    stale, fresh = uuid.uuid4(), uuid.uuid4()
    async with session_factory() as session, session.begin():
        for request_id in (stale, fresh):
            await stage_details(
                session, request_id=request_id, requester_id=uuid.uuid4(), details="help"
            )
        await session.execute(
            update(ConsultationRequestDraft)
            .where(ConsultationRequestDraft.request_id == stale)
            .values(created_at=func.now() - settings.request_draft_ttl - timedelta(minutes=1))
        )

    assert await sweep_drafts_once(session_factory, settings) == 1
    assert await sweep_drafts_once(session_factory, settings) == 0

    async with session_factory() as session:
        left = (await session.scalars(select(ConsultationRequestDraft.request_id))).all()
    assert left == [fresh]
