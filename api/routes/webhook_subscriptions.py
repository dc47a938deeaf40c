"""Webhook subscriptions (operators): where domain events are pushed, signed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import func, select, tuple_

from api.audit_trail import actor_of
from api.auth import Principal
from api.deps import OperatorPrincipal, SessionDep, SettingsDep
from api.errors import NotFound, Unprocessable
from api.openapi import problems
from api.pagination import Page, PageQuery, decode_time_cursor, encode_time_cursor, keyset_page
from api.schemas.webhooks import (
    WebhookSubscriptionCreate,
    WebhookSubscriptionOut,
    WebhookSubscriptionPatch,
    WebhookSubscriptionWithSecret,
)
from core.settings import Settings
from core.vocabulary import AuditAction, AuditTarget
from db import audit
from db.json_values import json_value
from db.models import WebhookSubscription
from integrations.outbound.targets import TargetRefused, webhook_target_policy
from integrations.webhooks.signing import generate_secret

_CURSOR_TIME = "created_at"

router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["webhooks"])

_NOT_NULL = frozenset({"url", "event_types", "is_enabled"})


async def get_subscription(session: SessionDep, subscription_id: uuid.UUID) -> WebhookSubscription:
    subscription = await session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"Webhook subscription {subscription_id} does not exist.")
    return subscription


def _check_target(url: str, settings: Settings) -> None:
    """Refuse what is not a public target, as far as the URL shows; the dispatcher
    checks the addresses it connects to as well."""
    try:
        webhook_target_policy(settings).check_url(url)
    except TargetRefused as exc:
        raise Unprocessable(
            f"The webhook URL is refused: {exc}. Webhooks go to public addresses only "
            "(BOOKING_WEBHOOK_ALLOWED_TARGETS names exceptions)."
        ) from None


def _with_secret(subscription: WebhookSubscription) -> WebhookSubscriptionWithSecret:
    return WebhookSubscriptionWithSecret.model_validate(subscription)


async def _audit(
    session: SessionDep,
    principal: Principal,
    action: AuditAction,
    subscription_id: uuid.UUID,
    changed: audit.Changes,
) -> None:
    await audit.record(
        session,
        actor=actor_of(principal),
        action=action,
        target_type=AuditTarget.WEBHOOK_SUBSCRIPTION,
        target_id=subscription_id,
        changed=changed,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe an endpoint to events (operator)",
    description="The response carries the signing secret; it is not shown again "
    "(rotate it to get a new one). The URL must reach a public address (not loopback, "
    "private, link-local, ...) and, in production, use https.",
)
async def create_subscription(
    body: WebhookSubscriptionCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorPrincipal,
) -> WebhookSubscriptionWithSecret:
    _check_target(body.url, settings)
    subscription = WebhookSubscription(
        url=body.url,
        event_types=[event_type.value for event_type in body.event_types],
        description=body.description,
        is_enabled=body.is_enabled,
        secret=generate_secret(),
    )
    session.add(subscription)
    await session.flush()
    await _audit(
        session,
        principal,
        AuditAction.WEBHOOK_SUBSCRIPTION_CREATED,
        subscription.id,
        audit.changes(None, audit.snapshot(subscription)),
    )
    await session.commit()
    await session.refresh(subscription)
    return _with_secret(subscription)


@router.get("", summary="List webhook subscriptions (operator)")
async def list_subscriptions(
    page: PageQuery,
    session: SessionDep,
    _: OperatorPrincipal,
    enabled: Annotated[bool | None, Query(description="Only enabled (or disabled) ones")] = None,
) -> Page[WebhookSubscriptionOut]:
    query = (
        select(WebhookSubscription)
        .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
        .limit(page.limit + 1)
    )
    if enabled is not None:
        query = query.where(WebhookSubscription.is_enabled.is_(enabled))
    if page.cursor is not None:
        created_at, after_id = decode_time_cursor(page.cursor, time_key=_CURSOR_TIME)
        query = query.where(
            tuple_(WebhookSubscription.created_at, WebhookSubscription.id)
            > tuple_(created_at, after_id)
        )
    rows = list((await session.scalars(query)).all())
    return keyset_page(
        rows,
        page.limit,
        WebhookSubscriptionOut.model_validate,
        lambda last: encode_time_cursor(last.created_at, last.id, time_key=_CURSOR_TIME),
    )


@router.get(
    "/{subscription_id}",
    summary="Get a webhook subscription (operator)",
    responses=problems(404),
)
async def read_subscription(
    subscription_id: uuid.UUID, session: SessionDep, _: OperatorPrincipal
) -> WebhookSubscriptionOut:
    return WebhookSubscriptionOut.model_validate(await get_subscription(session, subscription_id))


@router.patch(
    "/{subscription_id}",
    summary="Change, enable or disable a webhook subscription (operator)",
    responses=problems(404),
    description="A disabled subscription receives nothing: events that happen meanwhile "
    "are not queued for it, and its pending deliveries wait until it is enabled again.",
)
async def patch_subscription(
    subscription_id: uuid.UUID,
    body: WebhookSubscriptionPatch,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorPrincipal,
) -> WebhookSubscriptionOut:
    before = await audit.locked_snapshot(session, WebhookSubscription, subscription_id)
    subscription = await get_subscription(session, subscription_id)
    if body.url is not None:
        _check_target(body.url, settings)
    changes = body.model_dump(exclude_unset=True)
    for field in sorted(_NOT_NULL & {key for key, value in changes.items() if value is None}):
        raise Unprocessable(f"{field} cannot be null.")
    for field, value in changes.items():
        if field == "event_types":
            value = [str(event_type) for event_type in value]
        setattr(subscription, field, value)
    await _audit(
        session,
        principal,
        AuditAction.WEBHOOK_SUBSCRIPTION_UPDATED,
        subscription_id,
        audit.changes(before, audit.snapshot(subscription)),
    )
    await session.commit()
    await session.refresh(subscription)
    return WebhookSubscriptionOut.model_validate(subscription)


@router.delete(
    "/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook subscription and its deliveries (operator)",
    responses=problems(404),
)
async def delete_subscription(
    subscription_id: uuid.UUID, session: SessionDep, principal: OperatorPrincipal
) -> Response:
    before = await audit.locked_snapshot(session, WebhookSubscription, subscription_id)
    subscription = await get_subscription(session, subscription_id)
    await session.delete(subscription)
    await _audit(
        session,
        principal,
        AuditAction.WEBHOOK_SUBSCRIPTION_DELETED,
        subscription_id,
        audit.changes(before, None),
    )
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{subscription_id}/rotate-secret",
    summary="Replace the signing secret (operator)",
    responses=problems(404),
    description="Returns the new secret. For the configured grace period deliveries are "
    "signed with both the new and the previous secret, so the receiver can switch over "
    "without rejecting any.",
)
async def rotate_secret(
    subscription_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: OperatorPrincipal,
) -> WebhookSubscriptionWithSecret:
    await audit.locked_snapshot(session, WebhookSubscription, subscription_id)
    subscription = await get_subscription(session, subscription_id)
    expired_before = subscription.previous_secret_expires_at
    grace = settings.webhook_secret_rotation_grace
    if grace.total_seconds() > 0:
        # The database's clock, the one the dispatcher compares the expiry with.
        expires_at = await session.scalar(select(func.now() + grace))
        subscription.previous_secret = subscription.secret
        subscription.previous_secret_expires_at = expires_at
    else:
        subscription.previous_secret = None
        subscription.previous_secret_expires_at = None
    subscription.secret = generate_secret()
    # The secrets themselves stay out of the trail: the action says one was rotated,
    # the change shows until when the previous one still signs.
    await _audit(
        session,
        principal,
        AuditAction.WEBHOOK_SUBSCRIPTION_SECRET_ROTATED,
        subscription_id,
        audit.changes(
            {"previous_secret_expires_at": json_value(expired_before)},
            {"previous_secret_expires_at": json_value(subscription.previous_secret_expires_at)},
        ),
    )
    await session.commit()
    await session.refresh(subscription)
    return _with_secret(subscription)
