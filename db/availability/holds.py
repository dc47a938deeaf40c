"""How a slot is held for a request, booked, and given back.

A workflow holds exactly one session's time for its request while the consultant
decides (``hold``: the free slot is carved into the held session and free pieces
before and after it), books the held slot when they confirm (``book``) and frees it
again on decline, expiry or cancellation (``release``, ``release_all``, ``free``),
where it merges back with the free pieces beside it.

Every change starts from the slot's row locked in the state it expects, so
concurrent requests racing for one slot are decided by PostgreSQL's row lock: the
first one wins, the others re-read the row after it committed and change nothing.
The exclusion constraint stays the guarantee that no two slots overlap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from sqlalchemy import ColumnElement, delete, exists, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.vocabulary import RequestStatus, SlotStatus
from db.availability.busy import BusyTimes, busy_of_consultant
from db.availability.caps import (
    Ledger,
    held_session_start,
    ledgers,
    lock_consultant,
)
from db.availability.offer import (
    FreeSlot,
    Refusal,
    StartRules,
    buffered,
    consultant_zone,
    first_offered,
    offered_starts,
    refusal,
)
from db.availability.policy import HoldPolicy
from db.availability.slots import MAX_SLOT_LENGTH
from db.models import AvailabilitySlot, ConsultantProfile, ConsultationRequest

Slot = AvailabilitySlot

MINUTE = timedelta(minutes=1)

NO_BUFFERS = {"buffer_before_minutes": 0, "buffer_after_minutes": 0}
"""A free slot carries no buffers (they belong to the session a slot holds)."""


class HeldSlot(NamedTuple):
    slot_id: uuid.UUID
    consultant_id: uuid.UUID
    session_start: datetime


async def held_for_confirmation(session: AsyncSession, request_id: uuid.UUID) -> HeldSlot | None:
    """The slot the request holds while it waits for its assigned consultant's answer."""
    request = ConsultationRequest
    row = (
        await session.execute(
            select(Slot.id, Slot.consultant_user_id, held_session_start())
            .join(request, request.id == Slot.held_by_request_id)
            .where(
                request.id == request_id,
                request.status == RequestStatus.PENDING_CONFIRMATION.value,
                Slot.status == SlotStatus.HELD.value,
                Slot.consultant_user_id == request.assigned_consultant_user_id,
            )
        )
    ).first()
    return None if row is None else HeldSlot(*row)


class HeldTime(NamedTuple):
    """A hold: the slot (now exactly the session's time) and the session's times."""

    slot_id: uuid.UUID
    start: datetime
    end: datetime


async def hold(
    session: AsyncSession,
    *,
    slot_id: uuid.UUID,
    consultant_id: uuid.UUID,
    request_id: uuid.UUID,
    rules: StartRules,
    start: datetime | None = None,
    expires_at: datetime,
    retrying: bool = False,
    policy: HoldPolicy | None = None,
    stale_calendars_block: bool = False,
) -> HeldTime | Refusal | None:
    """Hold exactly one session's time for the request: ``start`` if given, else the
    earliest start the slot offers under ``rules`` and ``policy``. The slot is carved
    in this transaction, ``[before][held][after]``, like a booking carves it: the held
    part keeps the slot's id and spans the session with its buffers, the rest stays
    free (and merges back on release).

    With a ``start`` the slot is the free piece containing that session among the
    pieces of ``slot_id``'s published slot, so a learner's chosen start is still found
    after another request carved a different part of the same slot meanwhile.

    None: the slot is not there to hold (taken, gone); a ``Refusal``: it is, but no
    start in it satisfies the rules (the chosen start's reason, or the caps', or the
    consultant's busy time's: ``db.availability.busy``).

    Idempotent: holding what this request already holds succeeds again (and with
    ``retrying`` only that does). A hold past its expiry is fair game (its workflow
    is gone; a live one never lets it lapse). Concurrent holds of one slot queue on
    its row lock; each re-reads the row once the one before it committed. With caps,
    holds of one consultant also queue on the consultant's cap lock, and each counts
    what the ones before it committed.
    """
    session_end = None if start is None else start + rules.duration
    piece = await _lock_piece(
        session,
        slot_id,
        consultant_id=consultant_id,
        within=None if start is None or session_end is None else (start, session_end),
    )
    if piece is None:
        return None
    held_by_us = piece.status == SlotStatus.HELD.value and piece.held_by_request_id == request_id
    lapsed = (
        piece.status == SlotStatus.HELD.value
        and piece.hold_expires_at is not None
        and piece.hold_expires_at < piece.now
    )
    claimable = piece.status == SlotStatus.AVAILABLE.value or held_by_us or lapsed
    if not (held_by_us if retrying else claimable):
        return None
    if policy is not None:
        rules = policy.rules(rules, now=piece.now)
    free = FreeSlot(piece.start_time, piece.end_time, piece.time_zone)
    ledger = await _ledger(session, piece, request_id, policy)
    busy = await _busy_around(session, piece, stale_calendars_block=stale_calendars_block)
    consultant = piece.consultant_user_id
    if start is None:
        start = next(busy.free_starts(consultant, _admitted(free, rules, ledger), rules), None)
        if start is None:
            return _why_nothing_admitted(free, rules, ledger, busy, consultant)
    else:
        why = refusal(start, rules, time_zone=piece.time_zone, slot=free)
        if why is None and ledger is not None:
            why = ledger.refusal(start)
        if why is None and busy.overlaps(
            consultant, *buffered(start, start + rules.duration, rules)
        ):
            why = Refusal.CALENDAR_BUSY
        if why is not None:
            return why
    end = start + rules.duration
    taken_from, taken_until = buffered(start, end, rules)
    await _carve(
        session,
        piece,
        taken_from,
        taken_until,
        status=SlotStatus.HELD.value,
        held_by_request_id=request_id,
        hold_expires_at=expires_at,
        buffer_before_minutes=rules.buffer_before // MINUTE,
        buffer_after_minutes=rules.buffer_after // MINUTE,
    )
    return HeldTime(piece.id, start, end)


def _admitted(free: FreeSlot, rules: StartRules, ledger: Ledger | None) -> Iterator[datetime]:
    """The starts ``free`` offers that the caps admit."""
    starts = offered_starts(free, rules)
    return starts if ledger is None else ledger.admitted(starts)


def _why_nothing_admitted(
    free: FreeSlot,
    rules: StartRules,
    ledger: Ledger | None,
    busy: BusyTimes,
    consultant_id: uuid.UUID,
) -> Refusal | None:
    """Why a slot that offers starts has none to hold: the caps refuse the first one
    the busy time leaves free, or, if the caps leave some, busy time covers them
    (None: the slot offers no start at all)."""
    first = first_offered(free, rules)
    if first is None:
        return None
    unbusy = next(busy.free_starts(consultant_id, offered_starts(free, rules), rules), None)
    if unbusy is not None and ledger is not None:
        return ledger.refusal(unbusy)
    return Refusal.CALENDAR_BUSY


async def _ledger(
    session: AsyncSession, piece: _Piece, request_id: uuid.UUID, policy: HoldPolicy | None
) -> Ledger | None:
    """The consultant's counted bookings around the piece, counted under their cap
    lock (None: no caps)."""
    if policy is None or not policy.caps.any:
        return None
    consultant = piece.consultant_user_id
    await lock_consultant(session, consultant)
    counted = await ledgers(
        session,
        {consultant: policy.caps},
        {consultant: consultant_zone(piece.time_zone)},
        piece.start_time,
        piece.end_time,
        service_type_id=policy.service_type_id,
        excluding_request=request_id,
    )
    return counted[consultant]


async def _busy_around(
    session: AsyncSession,
    piece: _Piece,
    within: tuple[datetime, datetime] | None = None,
    *,
    stale_calendars_block: bool,
) -> BusyTimes:
    """The piece's consultant's busy time over ``within`` (default: the piece); none
    read for a consultant without a linked calendar."""
    start, end = within or (piece.start_time, piece.end_time)
    return await busy_of_consultant(
        session,
        piece.consultant_user_id,
        start,
        end,
        linked_calendars=piece.linked_calendars,
        stale_blocks=stale_calendars_block,
    )


CARVES_FOLLOWED = 16
"""How many concurrent carves of the same published slot a hold of a chosen start
follows before it gives up (each one means another request committed meanwhile)."""


class _Piece(NamedTuple):
    id: uuid.UUID
    consultant_user_id: uuid.UUID
    status: str
    held_by_request_id: uuid.UUID | None
    hold_expires_at: datetime | None
    start_time: datetime
    end_time: datetime
    carved_from_slot_id: uuid.UUID | None
    buffer_before_minutes: int
    buffer_after_minutes: int
    time_zone: str
    linked_calendars: int
    now: datetime


def published_slot_id() -> ColumnElement[uuid.UUID]:
    """The slot a piece was published as: its own id, or the one it was carved from."""
    return func.coalesce(Slot.carved_from_slot_id, Slot.id)


async def _lock_piece(
    session: AsyncSession,
    slot_id: uuid.UUID,
    *,
    consultant_id: uuid.UUID | None = None,
    within: tuple[datetime, datetime] | None = None,
) -> _Piece | None:
    """Lock a slot (of ``consultant_id``, if given): ``slot_id`` itself, or the piece
    of its published slot that contains the session ``within``."""
    statement = (
        select(
            Slot.id,
            Slot.consultant_user_id,
            Slot.status,
            Slot.held_by_request_id,
            Slot.hold_expires_at,
            Slot.start_time,
            Slot.end_time,
            Slot.carved_from_slot_id,
            Slot.buffer_before_minutes,
            Slot.buffer_after_minutes,
            ConsultantProfile.time_zone,
            ConsultantProfile.linked_calendars,
            func.now(),
        )
        .join(ConsultantProfile, ConsultantProfile.consultant_user_id == Slot.consultant_user_id)
        .with_for_update(of=Slot)
    )
    if consultant_id is not None:
        statement = statement.where(Slot.consultant_user_id == consultant_id)
    if within is None:
        row = (await session.execute(statement.where(Slot.id == slot_id))).one_or_none()
        return None if row is None else _Piece._make(row)
    start, end = within
    named = aliased(Slot)
    published = (
        select(func.coalesce(named.carved_from_slot_id, named.id))
        .where(named.id == slot_id)
        .scalar_subquery()
    )
    containing = select(Slot.id).where(
        published_slot_id() == published,
        Slot.start_time <= start,
        Slot.start_time >= end - MAX_SLOT_LENGTH,
        Slot.end_time >= end,
    )
    if consultant_id is not None:
        containing = containing.where(Slot.consultant_user_id == consultant_id)
    # Find the piece, then lock it and look again: a concurrent hold may have carved it
    # while this transaction waited for the lock, and the pieces it split off are only
    # visible to the next statement. Each round follows one such carve.
    for _ in range(CARVES_FOLLOWED):
        piece_id = await session.scalar(containing)
        if piece_id is None:
            return None
        row = (await session.execute(statement.where(Slot.id == piece_id))).one_or_none()
        if row is not None and row.start_time <= start and row.end_time >= end:
            return _Piece._make(row)
    return None


async def _carve(
    session: AsyncSession, piece: _Piece, start: datetime, end: datetime, **values: object
) -> None:
    """Shrink ``piece`` to ``[start, end)`` with ``values`` and make what is left before
    and after it new free slots that remember the published slot. Shrunk first, so the
    no-overlap constraint holds at every statement."""
    await session.execute(
        update(Slot).where(Slot.id == piece.id).values(start_time=start, end_time=end, **values)
    )
    published = piece.carved_from_slot_id or piece.id
    parts = [
        {
            "consultant_user_id": piece.consultant_user_id,
            "start_time": a,
            "end_time": b,
            "carved_from_slot_id": published,
        }
        for a, b in ((piece.start_time, start), (end, piece.end_time))
        if a < b
    ]
    if parts:
        await session.execute(insert(Slot), parts)


async def release(session: AsyncSession, *, slot_id: uuid.UUID, request_id: uuid.UUID) -> bool:
    """Give a held slot back (only if this request holds it), merged as ``free`` does."""
    statement = (
        update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.status == SlotStatus.HELD.value,
            Slot.held_by_request_id == request_id,
        )
        .values(
            status=SlotStatus.AVAILABLE.value,
            held_by_request_id=None,
            hold_expires_at=None,
            **NO_BUFFERS,
        )
        .returning(Slot.id)
    )
    released = (await session.execute(statement)).first() is not None
    if released:
        await merge_free_pieces(session, slot_id)
    return released


async def release_all(session: AsyncSession, request_id: uuid.UUID) -> None:
    """Give back every slot the request holds (when it ends without a booking)."""
    released = await session.scalars(
        update(Slot)
        .where(Slot.status == SlotStatus.HELD.value, Slot.held_by_request_id == request_id)
        .values(
            status=SlotStatus.AVAILABLE.value,
            held_by_request_id=None,
            hold_expires_at=None,
            **NO_BUFFERS,
        )
        .returning(Slot.id)
    )
    for slot_id in released.all():
        await merge_free_pieces(session, slot_id)


class Booking(StrEnum):
    """What became of a hold the consultant confirmed."""

    BOOKED = "booked"
    NOT_HELD = "not_held"
    """The request no longer holds the slot (its hold lapsed and another took it)."""
    CONSULTANT_BUSY = "consultant_busy"
    """A calendar event found since the hold covers the session or its buffers."""


async def book(
    session: AsyncSession,
    *,
    slot_id: uuid.UUID,
    request_id: uuid.UUID,
    start: datetime,
    end: datetime,
    stale_calendars_block: bool = False,
) -> Booking:
    """Turn the request's hold into a booking of exactly ``[start, end)``. A hold is
    exactly the session's time already; one taken before holds carved (the whole
    slot) is carved now, as a hold is. The slot keeps its id: the session points at
    it. The consultant's busy time is read again here, under the slot's lock: the
    calendar sync may have found an event while the hold waited for the answer."""
    piece = await _lock_piece(session, slot_id)
    if piece is None or piece.status != SlotStatus.HELD.value:
        return Booking.NOT_HELD
    if piece.held_by_request_id != request_id:
        return Booking.NOT_HELD
    taken_from = start - piece.buffer_before_minutes * MINUTE
    taken_until = end + piece.buffer_after_minutes * MINUTE
    if taken_from < piece.start_time or taken_until > piece.end_time:
        return Booking.NOT_HELD
    busy = await _busy_around(
        session, piece, (taken_from, taken_until), stale_calendars_block=stale_calendars_block
    )
    if busy.overlaps(piece.consultant_user_id, taken_from, taken_until):
        return Booking.CONSULTANT_BUSY
    await _carve(
        session,
        piece,
        taken_from,
        taken_until,
        status=SlotStatus.BOOKED.value,
        held_by_request_id=None,
        hold_expires_at=None,
    )
    return Booking.BOOKED


async def free(session: AsyncSession, slot_id: uuid.UUID) -> None:
    """A booked slot is available again (its session was cancelled or moved), merged
    with the free pieces beside it that were carved from the same published slot."""
    freed = (
        await session.execute(
            update(Slot)
            .where(Slot.id == slot_id, Slot.status == SlotStatus.BOOKED.value)
            .values(status=SlotStatus.AVAILABLE.value, **NO_BUFFERS)
            .returning(Slot.id)
        )
    ).first()
    if freed is not None:
        await merge_free_pieces(session, slot_id)


OPEN_REQUEST_STATUSES = (
    RequestStatus.PENDING_ASSIGNMENT.value,
    RequestStatus.PENDING_CONFIRMATION.value,
)


async def merge_free_pieces(session: AsyncSession, slot_id: uuid.UUID) -> None:
    """Join an available slot with the available slots adjoining it that come from the
    same published slot, so freed time is bookable exactly as before the booking.

    The joined slot keeps ``slot_id``; its neighbours are deleted first and it grows
    into their time afterwards, so the no-overlap constraint holds at every statement.
    A neighbour that an open request asked for by id stays as it is (that request
    needs the slot it named). The pieces all come from one published slot, so the
    joined slot is never longer than that one was.
    """
    for _ in range(2):  # a merge may bring a slot beside a second neighbour
        me = (
            await session.execute(
                select(
                    Slot.consultant_user_id,
                    Slot.start_time,
                    Slot.end_time,
                    Slot.carved_from_slot_id,
                )
                .where(Slot.id == slot_id, Slot.status == SlotStatus.AVAILABLE.value)
                .with_for_update()
            )
        ).one_or_none()
        if me is None:
            return
        published = me.carved_from_slot_id or slot_id
        asked_for = select(ConsultationRequest.id).where(
            ConsultationRequest.requested_slot_id == Slot.id,
            ConsultationRequest.status.in_(OPEN_REQUEST_STATUSES),
        )
        neighbours = (
            await session.execute(
                delete(Slot)
                .where(
                    Slot.consultant_user_id == me.consultant_user_id,
                    Slot.id != slot_id,
                    Slot.status == SlotStatus.AVAILABLE.value,
                    or_(Slot.end_time == me.start_time, Slot.start_time == me.end_time),
                    func.coalesce(Slot.carved_from_slot_id, Slot.id) == published,
                    ~exists(asked_for),
                )
                .returning(Slot.start_time, Slot.end_time)
            )
        ).all()
        if not neighbours:
            return
        await session.execute(
            update(Slot)
            .where(Slot.id == slot_id)
            .values(
                start_time=min(me.start_time, *(n.start_time for n in neighbours)),
                end_time=max(me.end_time, *(n.end_time for n in neighbours)),
                carved_from_slot_id=published,
            )
        )
