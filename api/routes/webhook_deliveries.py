"""Webhook deliveries (operators): what was sent where, and sending a parked one again."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select

from api.audit_trail import actor_of
from api.deps import OperatorPrincipal, SessionDep
from api.errors import BadRequest, Conflict, NotFound
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_cursor, encode_cursor
from api.routes.webhook_subscriptions import get_subscription
from api.schemas.webhooks import WebhookDeliveryOut
from core.vocabulary import AuditAction, AuditTarget, DeliveryStatus
from db import audit
from db.models import DomainEvent, WebhookDelivery
from db.webhook_deliveries import reset_for_redelivery

router = APIRouter(tags=["webhooks"])


def _out(delivery: WebhookDelivery, event_type: str) -> WebhookDeliveryOut:
    return WebhookDeliveryOut(
        id=delivery.id,
        subscription_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=event_type,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )


@router.get(
    "/v1/webhook-subscriptions/{subscription_id}/deliveries",
    summary="List a subscription's deliveries, newest event first (operator)",
    responses=problems((404, "No such subscription")),
)
async def list_deliveries(
    page: PageQuery,
    subscription_id: uuid.UUID,
    session: SessionDep,
    _: OperatorPrincipal,
    delivery_status: Annotated[
        DeliveryStatus | None, Query(alias="status", description="e.g. `parked`")
    ] = None,
) -> Page[WebhookDeliveryOut]:
    await get_subscription(session, subscription_id)
    query = (
        select(WebhookDelivery, DomainEvent.event_type)
        .join(DomainEvent, DomainEvent.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.subscription_id == subscription_id)
        # One delivery per event and subscription: the event's sequence is a unique key.
        .order_by(WebhookDelivery.event_sequence.desc())
        .limit(page.limit + 1)
    )
    if delivery_status is not None:
        query = query.where(WebhookDelivery.status == delivery_status.value)
    if page.cursor is not None:
        before = decode_cursor(page.cursor, frozenset({"s"}))["s"]
        if not isinstance(before, int) or isinstance(before, bool) or not 0 < before < 2**63:
            raise BadRequest("The cursor is not one this API issued.")
        query = query.where(WebhookDelivery.event_sequence < before)
    rows = list((await session.execute(query)).all())
    next_cursor = None
    if len(rows) > page.limit:
        rows = rows[: page.limit]
        next_cursor = encode_cursor({"s": rows[-1][0].event_sequence})
    return Page(
        items=[_out(delivery, event_type) for delivery, event_type in rows], next_cursor=next_cursor
    )


@router.post(
    "/v1/webhook-deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a parked (or delivered) event again (operator)",
    description="The delivery starts over with a full set of attempts, due now. A delivery "
    "still pending or in flight cannot be redelivered (409).",
    responses=problems(404, (409, "The delivery is still pending or in flight")),
)
async def redeliver(
    delivery_id: uuid.UUID, session: SessionDep, principal: OperatorPrincipal
) -> WebhookDeliveryOut:
    before = await reset_for_redelivery(session, delivery_id)
    if before is None:
        current = await session.get(WebhookDelivery, delivery_id)
        if current is None:
            raise NotFound(f"Webhook delivery {delivery_id} does not exist.")
        raise Conflict(
            f"Webhook delivery {delivery_id} is {current.status}; only a parked or "
            "succeeded delivery can be sent again."
        )
    await audit.record(
        session,
        actor=actor_of(principal),
        action=AuditAction.WEBHOOK_DELIVERY_REDELIVERED,
        target_type=AuditTarget.WEBHOOK_DELIVERY,
        target_id=delivery_id,
        changed=audit.changes(
            {"status": before.status.value, "attempts": before.attempts},
            {"status": DeliveryStatus.PENDING.value, "attempts": 0},
        ),
    )
    await session.commit()
    delivery, event_type = (
        await session.execute(
            select(WebhookDelivery, DomainEvent.event_type)
            .join(DomainEvent, DomainEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.id == delivery_id)
            .execution_options(populate_existing=True)
        )
    ).one()
    return _out(delivery, event_type)
