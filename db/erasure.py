"""Erasing a person: the record of it, and every statement its workflow runs.

The person's rows are found by their id *or* their pseudonym, so that a step
resumed after a crash (some rows already pseudonymised, some not) sees all of them.
Every change is a bounded batch in the caller's transaction, idempotent: run again,
it finds less (in the end nothing) to do.

What an erasure changes (see ``README.md``, Personal data):

- free text: request details and idempotency keys of their requests, join links of
  their sessions, staged drafts, the profile's display name and bio (and those
  fields in the audit entries of the profile), their data exports;
- the id itself, replaced by the pseudonym in every column that holds a person
  (``PERSON_COLUMNS``), in event payloads and in audit entries' changes; a
  consultant's profile row moves to the pseudonym (references first, then the row);
- the consultant's free slots are deleted (nobody can book an erased consultant);
- their linked calendars are deleted, with their (encrypted) addresses and passwords
  and the busy time expanded from them (``delete_calendars``).
- their private calendar feeds are deleted, as learner and as consultant, first
  thing (a feed is read without a bearer token, so the erased person's refused
  tokens would not stop it) and once more at the end.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.vocabulary import (
    FINAL_REQUEST_STATUSES,
    AuditTarget,
    ErasureRequester,
    ErasureStep,
    OpenRequestAction,
    RequestStatus,
    SessionStatus,
)
from db.availability.slots import FREE_STATUSES
from db.calendar_feeds import delete_feeds_of
from db.calendars.linked import delete_calendars_of
from db.models import (
    AuditLogEntry,
    AvailabilitySlot,
    ConsultantProfile,
    ConsultationRequest,
    ConsultationRequestDraft,
    DomainEvent,
    PersonalDataExport,
    PersonErasure,
    ScheduledSession,
)

FINAL_REQUESTS = tuple(sorted(status.value for status in FINAL_REQUEST_STATUSES))
PROFILE_FREE_TEXT = ("display_name", "bio")

LOCK_TIMEOUT = "5s"
"""A batch that meets a row locked longer than this fails and is retried."""


# --- the record -----------------------------------------------------------------------


async def request_erasure(
    session: AsyncSession,
    *,
    pseudonym: uuid.UUID,
    subject_id: uuid.UUID,
    via: ErasureRequester,
    requested_by: uuid.UUID | None,
) -> bool:
    """Record that the person is to be erased; False if that was recorded before."""
    inserted = await session.scalar(
        insert(PersonErasure)
        .values(
            pseudonym=pseudonym,
            subject_id=subject_id,
            requested_via=via.value,
            requested_by=requested_by,
            step=ErasureStep.STARTED.value,
        )
        .on_conflict_do_nothing(index_elements=[PersonErasure.pseudonym])
        .returning(PersonErasure.pseudonym)
    )
    return inserted is not None


async def erasure_of(session: AsyncSession, pseudonym: uuid.UUID) -> PersonErasure | None:
    return await session.get(PersonErasure, pseudonym, populate_existing=True)


async def is_erased(session: AsyncSession, pseudonym: uuid.UUID) -> bool:
    """Erased, or being erased: either way their token no longer works."""
    found = await session.scalar(
        select(PersonErasure.pseudonym).where(PersonErasure.pseudonym == pseudonym)
    )
    return found is not None


@dataclass(frozen=True)
class Subject:
    """The person being erased: their id (while the erasure runs) and pseudonym."""

    person_id: uuid.UUID
    pseudonym: uuid.UUID
    requested_by: uuid.UUID | None

    @property
    def ids(self) -> tuple[uuid.UUID, uuid.UUID]:
        return (self.person_id, self.pseudonym)


async def running_subject(session: AsyncSession, pseudonym: uuid.UUID) -> Subject | None:
    """The subject of an erasure still running; None once it completed."""
    row = (
        await session.execute(
            select(PersonErasure.subject_id, PersonErasure.requested_by).where(
                PersonErasure.pseudonym == pseudonym, PersonErasure.subject_id.is_not(None)
            )
        )
    ).one_or_none()
    if row is None or row.subject_id is None:
        return None
    return Subject(row.subject_id, pseudonym, row.requested_by)


async def set_step(session: AsyncSession, pseudonym: uuid.UUID, step: ErasureStep) -> None:
    await session.execute(
        update(PersonErasure)
        .where(PersonErasure.pseudonym == pseudonym, PersonErasure.completed_at.is_(None))
        .values(step=step.value)
    )


async def complete(session: AsyncSession, pseudonym: uuid.UUID) -> None:
    """The end: the id is forgotten; what stays is when, by whom, and the pseudonym."""
    await session.execute(
        update(PersonErasure)
        .where(PersonErasure.pseudonym == pseudonym, PersonErasure.completed_at.is_(None))
        .values(step=ErasureStep.COMPLETED.value, subject_id=None, completed_at=func.now())
    )


async def bound_lock_waits(session: AsyncSession) -> None:
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


# --- before anything: no new bookings ---------------------------------------------------


async def close_for_booking(session: AsyncSession, subject: Subject) -> None:
    await session.execute(
        update(ConsultantProfile)
        .where(ConsultantProfile.consultant_user_id.in_(subject.ids))
        .values(is_available_for_booking=False)
    )


# --- settling what is still open --------------------------------------------------------


@dataclass(frozen=True)
class OpenRequest:
    """A request of the person's still open: ``cancel`` it (theirs, or a session they
    give), ``decline`` it (offered to them as consultant), or ``wait`` until a session
    in progress ends (``until``)."""

    request_id: uuid.UUID
    action: OpenRequestAction
    until: datetime | None = None


async def open_requests(session: AsyncSession, subject: Subject, limit: int) -> list[OpenRequest]:
    request, session_row = ConsultationRequest, ScheduledSession
    found: dict[uuid.UUID, OpenRequest] = {}
    in_progress = await session.execute(
        select(session_row.consultation_request_id, session_row.scheduled_end_time)
        .where(
            or_(
                session_row.requester_user_id.in_(subject.ids),
                session_row.consultant_user_id.in_(subject.ids),
            ),
            session_row.status == SessionStatus.IN_PROGRESS.value,
        )
        .limit(limit)
    )
    for request_id, until in in_progress.all():
        found[request_id] = OpenRequest(request_id, OpenRequestAction.WAIT, until)
    own = await session.scalars(
        select(request.id)
        .where(request.requester_user_id.in_(subject.ids), request.status.not_in(FINAL_REQUESTS))
        .order_by(request.id)
        .limit(limit)
    )
    for request_id in own.all():
        found.setdefault(request_id, OpenRequest(request_id, OpenRequestAction.CANCEL))
    given = await session.scalars(
        select(session_row.consultation_request_id)
        .where(
            session_row.consultant_user_id.in_(subject.ids),
            session_row.status == SessionStatus.SCHEDULED.value,
        )
        .limit(limit)
    )
    for request_id in given.all():
        found.setdefault(request_id, OpenRequest(request_id, OpenRequestAction.CANCEL))
    offered = await session.scalars(
        select(request.id)
        .where(
            request.assigned_consultant_user_id.in_(subject.ids),
            request.status == RequestStatus.PENDING_CONFIRMATION.value,
        )
        .limit(limit)
    )
    for request_id in offered.all():
        found.setdefault(request_id, OpenRequest(request_id, OpenRequestAction.DECLINE))
    return list(found.values())[:limit]


@dataclass(frozen=True)
class RequestState:
    status: RequestStatus
    assigned_to: uuid.UUID | None
    session_status: SessionStatus | None
    session_end: datetime | None


async def request_state(session: AsyncSession, request_id: uuid.UUID) -> RequestState | None:
    row = (
        await session.execute(
            select(
                ConsultationRequest.status,
                ConsultationRequest.assigned_consultant_user_id,
                ScheduledSession.status,
                ScheduledSession.scheduled_end_time,
            )
            .outerjoin(
                ScheduledSession, ScheduledSession.consultation_request_id == ConsultationRequest.id
            )
            .where(ConsultationRequest.id == request_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return RequestState(
        RequestStatus(row[0]), row[1], SessionStatus(row[2]) if row[2] else None, row[3]
    )


# --- which workflows were theirs ------------------------------------------------------


async def request_ids_after(
    session: AsyncSession, subject: Subject, after: uuid.UUID | None, limit: int
) -> list[tuple[uuid.UUID, bool]]:
    """(request id, finished) of every request of theirs, as learner or consultant, in
    id order after ``after``: their workflows carry the person's id."""
    request = ConsultationRequest
    given = select(ScheduledSession.consultation_request_id).where(
        ScheduledSession.consultant_user_id.in_(subject.ids)
    )
    query = (
        select(request.id, request.status.in_(FINAL_REQUESTS))
        .where(
            or_(
                request.requester_user_id.in_(subject.ids),
                request.assigned_consultant_user_id.in_(subject.ids),
                request.id.in_(given),
            )
        )
        .order_by(request.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(request.id > after)
    return [(row[0], bool(row[1])) for row in (await session.execute(query)).all()]


async def export_ids(session: AsyncSession, subject: Subject) -> list[uuid.UUID]:
    query = select(PersonalDataExport.id).where(PersonalDataExport.subject_id.in_(subject.ids))
    return list((await session.scalars(query)).all())


# --- free text --------------------------------------------------------------------------


async def delete_free_text(session: AsyncSession, subject: Subject, limit: int) -> int:
    """One batch of each kind of free text of the person; how many rows changed."""
    changed = 0
    request = ConsultationRequest
    changed += await _update_some(
        session,
        request,
        and_(
            request.requester_user_id.in_(subject.ids),
            or_(request.request_details.is_not(None), request.idempotency_key.is_not(None)),
        ),
        limit,
        request_details=None,
        idempotency_key=None,
    )
    session_row = ScheduledSession
    changed += await _update_some(
        session,
        session_row,
        and_(
            or_(
                session_row.requester_user_id.in_(subject.ids),
                session_row.consultant_user_id.in_(subject.ids),
            ),
            session_row.meeting_platform_join_url.is_not(None),
        ),
        limit,
        meeting_platform_join_url=None,
    )
    drafts = await session.execute(
        delete(ConsultationRequestDraft)
        .where(ConsultationRequestDraft.requester_user_id.in_(subject.ids))
        .returning(ConsultationRequestDraft.request_id)
    )
    changed += len(drafts.all())
    profile = ConsultantProfile
    changed += await _update_some(
        session,
        profile,
        and_(
            profile.consultant_user_id.in_(subject.ids),
            or_(profile.display_name.is_not(None), profile.bio.is_not(None)),
        ),
        limit,
        display_name=None,
        bio=None,
    )
    exports = await session.execute(
        delete(PersonalDataExport)
        .where(PersonalDataExport.subject_id.in_(subject.ids))
        .returning(PersonalDataExport.id)
    )
    changed += len(exports.all())
    entry = AuditLogEntry
    redacted = entry.changes
    for name in PROFILE_FREE_TEXT:
        redacted = redacted.op("-")(name)  # type: ignore[assignment]
    changed += await _update_some(
        session,
        entry,
        and_(
            entry.target_type == AuditTarget.CONSULTANT_PROFILE.value,
            entry.target_id.in_(subject.ids),
            or_(*(entry.changes.has_key(name) for name in PROFILE_FREE_TEXT)),
        ),
        limit,
        changes=redacted,
    )
    return changed


async def _update_some(
    session: AsyncSession,
    model: Any,
    condition: ColumnElement[bool],
    limit: int,
    **values: Any,
) -> int:
    """``UPDATE`` at most ``limit`` rows matching ``condition``; how many it did."""
    (key,) = [getattr(model, column.key) for column in model.__mapper__.primary_key]
    picked = select(key).where(condition).limit(limit).with_for_update()
    result = await session.execute(
        update(model).where(key.in_(picked)).values(**values).returning(key)
    )
    return len(result.all())


# --- the id in event payloads -------------------------------------------------------------


async def pseudonymise_events(
    session: AsyncSession, subject: Subject, *, after_sequence: int, span: int
) -> tuple[int, int | None]:
    """Replace the id in the payloads of the events numbered ``(after, after + span]``;
    returns how many changed and where to go on (None: that was the last range)."""
    last = await session.scalar(select(func.max(DomainEvent.sequence))) or 0
    upper = after_sequence + span
    original, pseudonym = str(subject.person_id), str(subject.pseudonym)
    result = await session.execute(
        update(DomainEvent)
        .where(
            DomainEvent.sequence > after_sequence,
            DomainEvent.sequence <= upper,
            cast(DomainEvent.payload, String).contains(original),
        )
        .values(
            payload=cast(
                func.replace(cast(DomainEvent.payload, String), original, pseudonym), JSONB
            )
        )
        .returning(DomainEvent.id)
    )
    return len(result.all()), (upper if upper < last else None)


# --- the id in rows -----------------------------------------------------------------------

PERSON_COLUMNS: tuple[InstrumentedAttribute[Any], ...] = (
    ConsultationRequest.requester_user_id,
    ConsultationRequest.assigned_consultant_user_id,
    ConsultationRequest.preferred_consultant_user_id,
    ScheduledSession.requester_user_id,
    ScheduledSession.consultant_user_id,
    AvailabilitySlot.consultant_user_id,
    AuditLogEntry.actor_id,
    AuditLogEntry.target_id,
    PersonalDataExport.requested_by,
    PersonErasure.requested_by,
)
"""Every column that holds a person's id, besides the consultant profile's key."""


async def pseudonymise_rows(session: AsyncSession, subject: Subject, limit: int) -> int:
    """One batch of the first column that still holds the id; once none does, the
    profile row under the id goes (its copy under the pseudonym took its place before
    anything pointed at it). Returns how many rows changed (0: done)."""
    original, pseudonym = subject.person_id, subject.pseudonym
    profile = await session.get(ConsultantProfile, original)
    if profile is not None:
        await session.execute(
            insert(ConsultantProfile)
            .from_select(
                [
                    "consultant_user_id",
                    "specializations",
                    "is_available_for_booking",
                    "time_zone",
                    "last_assigned_at",
                    "created_at",
                ],
                select(
                    literal(pseudonym),
                    ConsultantProfile.specializations,
                    literal(False),
                    ConsultantProfile.time_zone,
                    ConsultantProfile.last_assigned_at,
                    ConsultantProfile.created_at,
                ).where(ConsultantProfile.consultant_user_id == original),
            )
            .on_conflict_do_nothing(index_elements=[ConsultantProfile.consultant_user_id])
        )
    for column in PERSON_COLUMNS:
        changed = await _update_some(
            session, column.class_, column == original, limit, **{column.key: pseudonym}
        )
        if changed:
            return changed
    entry = AuditLogEntry
    text_of_changes = cast(entry.changes, String)
    changed = await _update_some(
        session,
        entry,
        text_of_changes.contains(str(original)),
        limit,
        changes=cast(func.replace(text_of_changes, str(original), str(pseudonym)), JSONB),
    )
    if changed:
        return changed
    if profile is not None:
        await session.execute(
            delete(ConsultantProfile).where(ConsultantProfile.consultant_user_id == original)
        )
        return 1
    return 0


async def delete_free_slots(session: AsyncSession, subject: Subject) -> int:
    """Nobody can book an erased consultant: their free slots go (booked ones stay)."""
    result = await session.execute(
        delete(AvailabilitySlot)
        .where(
            AvailabilitySlot.consultant_user_id.in_(subject.ids),
            AvailabilitySlot.status.in_([status.value for status in FREE_STATUSES]),
        )
        .returning(AvailabilitySlot.id)
    )
    return len(result.all())


async def delete_calendars(session: AsyncSession, subject: Subject) -> int:
    """Their linked calendars, credentials and busy time: nothing of theirs to sync."""
    return await delete_calendars_of(session, subject.ids)


async def delete_calendar_feeds(session: AsyncSession, subject: Subject) -> int:
    """Their feeds serve nobody any more (the subscribed apps get 404)."""
    return await delete_feeds_of(session, subject.ids)
