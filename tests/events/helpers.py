"""Writing domain events the way the transitions will, and waiting for outcomes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from db.models import DomainEvent, WebhookDelivery
from integrations.webhooks.dispatcher import WebhookDispatcher
from tests.support.tokens import TokenFactory


def _event_values(
    event_type: str, request_id: uuid.UUID | None, payload: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "event_type": event_type,
        "consultation_request_id": request_id,
        "dedupe_key": f"test:{uuid.uuid4()}",
        "payload": payload or {},
    }


async def insert_event(
    connection: AsyncConnection,
    event_type: str = "consultation.requested",
    request_id: uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
) -> DomainEvent:
    """Append one event inside the caller's (possibly still open) transaction."""
    row = (
        await connection.execute(
            insert(DomainEvent)
            .values(**_event_values(event_type, request_id, payload))
            .returning(*DomainEvent.__table__.columns)
        )
    ).one()
    return DomainEvent(**row._asdict())


async def append_events(
    session_factory: async_sessionmaker[AsyncSession],
    *events: tuple[str, uuid.UUID | None],
) -> list[DomainEvent]:
    """Each event in a transaction of its own, committed in the given order."""
    written = []
    for event_type, request_id in events:
        async with session_factory() as session, session.begin():
            connection = await session.connection()
            written.append(await insert_event(connection, event_type, request_id))
    return written


async def deliveries(session_factory: async_sessionmaker[AsyncSession]) -> list[WebhookDelivery]:
    async with session_factory() as session:
        return list(
            (
                await session.scalars(
                    select(WebhookDelivery).order_by(WebhookDelivery.event_sequence)
                )
            ).all()
        )


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Wait until ``check`` holds. It looks at the database, which cannot notify us,
    so this polls."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running(*dispatchers: WebhookDispatcher) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(dispatcher.run(stop)) for dispatcher in dispatchers]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def create_subscription(
    client: httpx.AsyncClient, tokens: TokenFactory, url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-subscriptions", json={"url": url, **fields}, headers=tokens.headers("operator")
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
