"""Which rows are about a person, section by section, read in pages.

A person is a user id of the platform's IAM: a learner (requests, drafts, sessions
they booked), a consultant (profile, availability, requests offered or assigned to
them, their sessions), or both. Events are those of their requests and sessions,
plus any event whose payload names them (an offer a consultant declined belongs to
a request assigned to someone else in the end). The audit log's entries are those
they made or that are about them.

Each section is read in keyset order, ``limit`` rows at a time; the cursor is the
last row's ordering values as JSON, so it can travel through a workflow.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.vocabulary import PersonalDataSection
from db.base import Base
from db.json_values import JsonValue, json_value, row_as_json
from db.models import (
    AuditLogEntry,
    AvailabilitySlot,
    CalendarFeed,
    ConsultantCalendar,
    ConsultantProfile,
    ConsultationRequest,
    ConsultationRequestDraft,
    DomainEvent,
    ScheduledSession,
)

Cursor = list[JsonValue]

PAYLOAD_PERSON_KEYS = ("requester_id", "consultant_id", "actor_id")
"""Where an event's payload names a person (see the event catalogue)."""


def requests_of(person_id: uuid.UUID) -> ColumnElement[bool]:
    request = ConsultationRequest
    return or_(
        request.requester_user_id == person_id,
        request.assigned_consultant_user_id == person_id,
        request.preferred_consultant_user_id == person_id,
    )


def sessions_of(person_id: uuid.UUID) -> ColumnElement[bool]:
    return or_(
        ScheduledSession.requester_user_id == person_id,
        ScheduledSession.consultant_user_id == person_id,
    )


def payload_names(person_id: uuid.UUID) -> ColumnElement[bool]:
    return or_(
        *(DomainEvent.payload.contains({key: str(person_id)}) for key in PAYLOAD_PERSON_KEYS)
    )


def events_of(person_id: uuid.UUID) -> ColumnElement[bool]:
    their_requests = select(ConsultationRequest.id).where(requests_of(person_id))
    their_sessions = select(ScheduledSession.consultation_request_id).where(sessions_of(person_id))
    return or_(
        DomainEvent.consultation_request_id.in_(their_requests),
        DomainEvent.consultation_request_id.in_(their_sessions),
        payload_names(person_id),
    )


def audit_entries_of(person_id: uuid.UUID) -> ColumnElement[bool]:
    return or_(AuditLogEntry.actor_id == person_id, AuditLogEntry.target_id == person_id)


@dataclass(frozen=True)
class Section:
    model: type[Base]
    order: tuple[InstrumentedAttribute[Any], ...]
    belongs_to: Callable[[uuid.UUID], ColumnElement[bool]]
    # Bookkeeping of the service itself, not data about the person.
    leave_out: frozenset[str] = field(default_factory=frozenset)


SECTIONS: dict[PersonalDataSection, Section] = {
    PersonalDataSection.PROFILE: Section(
        ConsultantProfile,
        (ConsultantProfile.consultant_user_id,),
        lambda person: ConsultantProfile.consultant_user_id == person,
    ),
    PersonalDataSection.CONSULTATION_REQUESTS: Section(
        ConsultationRequest,
        (ConsultationRequest.requested_at, ConsultationRequest.id),
        requests_of,
    ),
    PersonalDataSection.REQUEST_DRAFTS: Section(
        ConsultationRequestDraft,
        (ConsultationRequestDraft.created_at, ConsultationRequestDraft.request_id),
        lambda person: ConsultationRequestDraft.requester_user_id == person,
    ),
    PersonalDataSection.SESSIONS: Section(
        ScheduledSession,
        (ScheduledSession.scheduled_start_time, ScheduledSession.id),
        sessions_of,
    ),
    PersonalDataSection.AVAILABILITY: Section(
        AvailabilitySlot,
        (AvailabilitySlot.start_time, AvailabilitySlot.id),
        lambda person: AvailabilitySlot.consultant_user_id == person,
    ),
    PersonalDataSection.CALENDARS: Section(
        ConsultantCalendar,
        (ConsultantCalendar.created_at, ConsultantCalendar.id),
        lambda person: ConsultantCalendar.consultant_user_id == person,
        # Never the secrets; nor the servers' sync bookkeeping.
        leave_out=frozenset(
            {
                "address_ciphertext",
                "password_ciphertext",
                "etag",
                "last_modified",
                "sync_token",
                "ctag",
                "expanded_until",
            }
        ),
    ),
    PersonalDataSection.EVENTS: Section(
        DomainEvent,
        (DomainEvent.sequence,),
        events_of,
        leave_out=frozenset({"transaction_id", "dedupe_key"}),
    ),
    PersonalDataSection.AUDIT_LOG: Section(
        AuditLogEntry, (AuditLogEntry.occurred_at, AuditLogEntry.id), audit_entries_of
    ),
    # That they have feeds, since when, whether revoked; the token's hash is a
    # credential, not data about them.
    PersonalDataSection.CALENDAR_FEEDS: Section(
        CalendarFeed,
        (CalendarFeed.created_at, CalendarFeed.id),
        lambda person: CalendarFeed.owner_user_id == person,
        leave_out=frozenset({"token_sha256"}),
    ),
}


def _position(section: Section, cursor: Cursor) -> tuple[Any, ...]:
    """The cursor's JSON values back in their columns' types."""
    values: list[Any] = []
    for column, value in zip(section.order, cursor, strict=True):
        python_type = column.type.python_type
        if python_type is datetime:
            values.append(datetime.fromisoformat(str(value)))
        elif python_type is uuid.UUID:
            values.append(uuid.UUID(str(value)))
        else:
            values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class SectionPage:
    items: list[dict[str, JsonValue]]
    next_cursor: Cursor | None


async def section_page(
    session: AsyncSession,
    which: PersonalDataSection,
    person_id: uuid.UUID,
    *,
    after: Cursor | None,
    limit: int,
) -> SectionPage:
    """Up to ``limit`` rows of the section after ``after``; ``next_cursor`` is None on
    the last page."""
    section = SECTIONS[which]
    query = (
        select(section.model)
        .where(section.belongs_to(person_id))
        .order_by(*section.order)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(tuple_(*section.order) > tuple_(*_position(section, after)))
    rows: Sequence[Base] = (await session.scalars(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = None
    if more:
        cursor = [json_value(getattr(rows[-1], column.key)) for column in section.order]
    return SectionPage(
        items=[row_as_json(row, leave_out=section.leave_out) for row in rows],
        next_cursor=cursor,
    )
