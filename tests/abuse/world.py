"""A small world for the abuse tests, built once per module: a service type, two
consultants with free slots, two learners, each learner with a request waiting for
its consultant's answer and a scheduled session, and a webhook subscription.

Requests and sessions are written by the workflow's own activities (as the workflow
would), not driven through Temporal: these tests are about what the API lets through
before any workflow is asked. Every table is emptied afterwards.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db.models import WebhookSubscription
from integrations.webhooks.signing import generate_secret
from tests.activities.builders import Backend, future
from tests.support.database import truncate_all_sql


@dataclass(frozen=True)
class Party:
    """A learner or a consultant and everything of theirs."""

    user_id: uuid.UUID
    request_id: uuid.UUID  # waiting for the consultant's answer (pending_confirmation)
    session_id: uuid.UUID  # scheduled, days ahead


@dataclass
class World:
    backend: Backend
    service_type_id: uuid.UUID
    learner: Party
    other_learner: Party
    consultant: Party
    other_consultant: Party
    subscription_id: uuid.UUID
    _hours: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fresh_start(self) -> datetime:
        """A whole hour no slot of the world uses yet (slots never overlap)."""
        return future(days=40) + timedelta(hours=2 * next(self._hours))

    async def free_slot(self, consultant_id: uuid.UUID) -> uuid.UUID:
        return await self.backend.slot(consultant_id, self.fresh_start())


async def _pair(
    backend: Backend, service_type_id: uuid.UUID, learner_id: uuid.UUID, consultant_id: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID]:
    """A request waiting for ``consultant_id``'s answer and a booked session."""
    offered_at = future(days=5)
    offered_slot = await backend.slot(consultant_id, offered_at, hours=2)
    waiting = await backend.request(
        service_type_id,
        window_start=offered_at,
        window_end=offered_at + timedelta(hours=2),
        requester_id=learner_id,
    )
    held = await backend.hold(waiting, offered_slot, consultant_id, not_before=offered_at)
    assert held.held
    booked_at = future(days=6)
    booked_slot = await backend.slot(consultant_id, booked_at, hours=2)
    booked = await backend.request(
        service_type_id,
        window_start=booked_at,
        window_end=booked_at + timedelta(hours=2),
        requester_id=learner_id,
    )
    reserved = await backend.book(booked, booked_slot, consultant_id, booked_at)
    return waiting, reserved.session_id


@asynccontextmanager
async def world_in(engine: AsyncEngine) -> AsyncIterator[World]:
    """The world, built in ``engine``'s database and emptied afterwards."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    backend = Backend(sessions)
    try:
        service_type = await backend.service_type(minutes=30)
        consultants = [await backend.consultant() for _ in range(2)]
        learners = [uuid.uuid4(), uuid.uuid4()]
        pairs = [
            await _pair(backend, service_type, learner, consultant)
            for learner, consultant in zip(learners, consultants, strict=True)
        ]
        for consultant in consultants:  # free time besides
            await backend.slot(consultant, future(days=7), hours=3)
        async with sessions() as session, session.begin():
            subscription = (
                await session.execute(
                    insert(WebhookSubscription)
                    .values(url="https://billing.example.test/hooks", secret=generate_secret())
                    .returning(WebhookSubscription.id)
                )
            ).scalar_one()
        yield World(
            backend=backend,
            service_type_id=service_type,
            learner=Party(learners[0], *pairs[0]),
            other_learner=Party(learners[1], *pairs[1]),
            consultant=Party(consultants[0], *pairs[0]),
            other_consultant=Party(consultants[1], *pairs[1]),
            subscription_id=subscription,
        )
    finally:
        await _empty(sessions)


async def _empty(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text(truncate_all_sql()))
