"""The audit trail of the catalogue and the configuration: who changed what, when, how.

Every change to service types, consultant profiles, availability and webhook
configuration appends one ``audit_log`` row in the caller's transaction (``record``),
so a change and its row commit or roll back together; the caller commits. A row
holds the fields that changed, before and after, taken from the columns listed in
``AUDITED_COLUMNS``: a secret column is never among them, so no secret can reach
the trail.

The before-image of a change is read with the row locked (``locked_snapshot``), so
two concurrent changes of one record each see what the other left, and the trail
reads as a sequence.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, delete, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import AuditAction, AuditActorKind, AuditTarget
from db.base import Base
from db.json_values import JsonValue, json_value
from db.models import (
    AuditLogEntry,
    AvailabilitySlot,
    CalendarFeed,
    ConsultantCalendar,
    ConsultantProfile,
    ConsultantServiceLimit,
    ServiceType,
    WebhookDelivery,
    WebhookSubscription,
)

Snapshot = dict[str, JsonValue]
Changes = dict[str, dict[str, JsonValue]]

AUDITED_COLUMNS: dict[type[Base], tuple[str, ...]] = {
    ServiceType: (
        "name",
        "description",
        "default_duration_minutes",
        "is_active",
        "required_specialization",
        "confirmation_timeout_seconds",
        "start_interval_minutes",
        "buffer_before_minutes",
        "buffer_after_minutes",
        "minimum_notice_minutes",
        "booking_horizon_days",
        "cancel_cutoff_minutes",
        "reschedule_cutoff_minutes",
    ),
    ConsultantProfile: (
        "display_name",
        "bio",
        "specializations",
        "is_available_for_booking",
        "time_zone",
        "buffer_before_minutes",
        "buffer_after_minutes",
        "max_sessions_per_day",
        "max_sessions_per_week",
    ),
    ConsultantServiceLimit: (
        "consultation_service_type_id",
        "max_sessions_per_day",
        "max_sessions_per_week",
    ),
    AvailabilitySlot: ("consultant_user_id", "start_time", "end_time", "status"),
    # Never ``secret`` or ``previous_secret``: a rotation shows as the new expiry of
    # the previous secret, and as its action.
    WebhookSubscription: ("url", "event_types", "description", "is_enabled"),
    WebhookDelivery: ("status", "attempts"),
    # Never the address, the password or their hint: which calendar, not where it is.
    ConsultantCalendar: ("consultant_user_id", "kind"),
    # Never ``token_sha256``: whose feed it is, and whether it still works.
    CalendarFeed: ("owner_role", "owner_user_id", "revoked_at"),
}
"""Per audited table, the columns whose changes the trail records."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a person in a capacity, or the IAM (no person)."""

    kind: AuditActorKind
    user_id: uuid.UUID | None


def snapshot(row: Base) -> Snapshot:
    """The audited columns of ``row`` as the trail stores them."""
    return {name: json_value(getattr(row, name)) for name in AUDITED_COLUMNS[type(row)]}


def changes(
    before: Mapping[str, JsonValue] | None, after: Mapping[str, JsonValue] | None
) -> Changes:
    """The fields whose value differs, each with its value before and after (``None``
    for a record that did not exist before, or does not any more)."""
    old, new = before or {}, after or {}
    return {
        name: {"before": old.get(name), "after": new.get(name)}
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    }


async def locked_snapshot(
    session: AsyncSession, model: type[Base], primary_key: uuid.UUID | tuple[uuid.UUID, ...]
) -> Snapshot | None:
    """The audited columns of one row, locked until the caller's transaction ends;
    ``None`` if there is no such row."""
    row = await session.get(model, primary_key, with_for_update=True, populate_existing=True)
    return None if row is None else snapshot(row)


async def record(
    session: AsyncSession,
    *,
    actor: Actor,
    action: AuditAction,
    target_type: AuditTarget,
    target_id: uuid.UUID,
    changed: Changes,
) -> uuid.UUID:
    """Append one entry in the caller's transaction; returns its id."""
    entry_id = await session.scalar(
        insert(AuditLogEntry)
        .values(
            actor_id=actor.user_id,
            actor_kind=actor.kind.value,
            action=action.value,
            target_type=target_type.value,
            target_id=target_id,
            changes=changed,
        )
        .returning(AuditLogEntry.id)
    )
    assert isinstance(entry_id, uuid.UUID)
    return entry_id


async def withdraw(session: AsyncSession, entry_id: uuid.UUID) -> None:
    """Remove an entry whose change was undone before it took effect (a workflow that
    could not be started after its row was committed)."""
    await session.execute(delete(AuditLogEntry).where(AuditLogEntry.id == entry_id))


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What to list; every given criterion must hold. ``since``/``until`` bound
    ``occurred_at`` as ``[since, until)``."""

    actor_id: uuid.UUID | None = None
    actions: Collection[AuditAction] = ()
    target_type: AuditTarget | None = None
    target_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


def newest_first(
    criteria: AuditFilter, *, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> Select[AuditLogEntry]:
    """Entries matching ``criteria``, newest first, after the keyset position
    ``before`` (occurred_at, id) of the previous page."""
    entry = AuditLogEntry
    query = select(entry).order_by(entry.occurred_at.desc(), entry.id.desc()).limit(limit)
    if criteria.actor_id is not None:
        query = query.where(entry.actor_id == criteria.actor_id)
    if criteria.actions:
        query = query.where(entry.action.in_(sorted(a.value for a in criteria.actions)))
    if criteria.target_type is not None:
        query = query.where(entry.target_type == criteria.target_type.value)
    if criteria.target_id is not None:
        query = query.where(entry.target_id == criteria.target_id)
    if criteria.since is not None:
        query = query.where(entry.occurred_at >= criteria.since)
    if criteria.until is not None:
        query = query.where(entry.occurred_at < criteria.until)
    if before is not None:
        query = query.where(tuple_(entry.occurred_at, entry.id) < tuple_(*before))
    return query


async def list_entries(
    session: AsyncSession,
    criteria: AuditFilter,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AuditLogEntry]:
    return list((await session.scalars(newest_first(criteria, before=before, limit=limit))).all())
