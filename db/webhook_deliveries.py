"""Statements on webhook deliveries that operators make (the dispatcher has its own)."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import DeliveryStatus
from db.models import WebhookDelivery

REDELIVERABLE = (DeliveryStatus.SUCCEEDED, DeliveryStatus.PARKED)


class DeliveryBefore(NamedTuple):
    """A delivery's state just before it was reset."""

    status: DeliveryStatus
    attempts: int


async def reset_for_redelivery(
    session: AsyncSession, delivery_id: uuid.UUID
) -> DeliveryBefore | None:
    """Start a parked or succeeded delivery over (full attempts, due now); returns what
    it was, or ``None`` when it is missing, pending or in flight.

    One statement, its row locked by the sub-select, so a dispatcher claiming it
    meanwhile (``SKIP LOCKED``) cannot interleave, and the state it had is the one
    this reset replaced.
    """
    old = (
        select(WebhookDelivery.id, WebhookDelivery.status, WebhookDelivery.attempts)
        .where(WebhookDelivery.id == delivery_id)
        .with_for_update()
        .subquery()
    )
    row = (
        await session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == old.c.id,
                old.c.status.in_([status.value for status in REDELIVERABLE]),
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=func.now(),
                locked_until=None,
            )
            .returning(old.c.status, old.c.attempts)
        )
    ).one_or_none()
    return None if row is None else DeliveryBefore(DeliveryStatus(row.status), row.attempts)
