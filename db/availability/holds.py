"""How a slot is held for a request, booked, and given back.

A workflow holds a free slot for its request while the consultant decides
(``hold``), books the held slot when they confirm (``book``: the slot is carved to
the session's time, the rest stays free) and frees it again on decline, expiry or
cancellation (``release``, ``release_all``, ``free``).

Every change is conditional on the state it expects (``WHERE status = ... AND
held_by_request_id = ...``), so concurrent requests racing for one slot are
decided by PostgreSQL's row lock: the first update wins, the others re-check the
condition after it commits and change nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import RequestStatus, SlotStatus
from db.models import AvailabilitySlot, ConsultationRequest

Slot = AvailabilitySlot


class HeldSlot(NamedTuple):
    slot_id: uuid.UUID
    consultant_id: uuid.UUID
    slot_start: datetime


async def held_for_confirmation(session: AsyncSession, request_id: uuid.UUID) -> HeldSlot | None:
    """The slot the request holds while it waits for its assigned consultant's answer."""
    request = ConsultationRequest
    row = (
        await session.execute(
            select(Slot.id, Slot.consultant_user_id, Slot.start_time)
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


async def hold(
    session: AsyncSession,
    *,
    slot_id: uuid.UUID,
    consultant_id: uuid.UUID,
    request_id: uuid.UUID,
    duration: timedelta,
    not_before: datetime,
    window_end: datetime | None,
    expires_at: datetime,
    retrying: bool = False,
) -> tuple[datetime, datetime] | None:
    """Hold the slot for the request if a session of ``duration`` still fits in it
    from ``not_before`` (and before ``window_end``); returns that session's times.

    Idempotent: holding a slot this request already holds succeeds again (and with
    ``retrying`` only that does). A hold past its expiry is fair game (its workflow
    is gone; a live one never lets it lapse).
    """
    held_by_us = and_(Slot.status == SlotStatus.HELD.value, Slot.held_by_request_id == request_id)
    claimable = or_(
        Slot.status == SlotStatus.AVAILABLE.value,
        held_by_us,
        and_(Slot.status == SlotStatus.HELD.value, Slot.hold_expires_at < func.now()),
    )
    start: ColumnElement[datetime] = func.greatest(
        Slot.start_time, literal(not_before, DateTime(timezone=True))
    )
    limit: ColumnElement[datetime] = Slot.end_time.expression
    if window_end is not None:
        limit = func.least(Slot.end_time, literal(window_end, DateTime(timezone=True)))
    statement = (
        update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.consultant_user_id == consultant_id,
            held_by_us if retrying else claimable,
            start + duration <= limit,
        )
        .values(
            status=SlotStatus.HELD.value, held_by_request_id=request_id, hold_expires_at=expires_at
        )
        .returning(start)
    )
    held_start: datetime | None = (await session.execute(statement)).scalar_one_or_none()
    if held_start is None:
        return None
    return held_start, held_start + duration


async def release(session: AsyncSession, *, slot_id: uuid.UUID, request_id: uuid.UUID) -> bool:
    """Give a held slot back (only if this request holds it), merged as ``free`` does."""
    statement = (
        update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.status == SlotStatus.HELD.value,
            Slot.held_by_request_id == request_id,
        )
        .values(status=SlotStatus.AVAILABLE.value, held_by_request_id=None, hold_expires_at=None)
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
        .values(status=SlotStatus.AVAILABLE.value, held_by_request_id=None, hold_expires_at=None)
        .returning(Slot.id)
    )
    for slot_id in released.all():
        await merge_free_pieces(session, slot_id)


async def book(
    session: AsyncSession,
    *,
    slot_id: uuid.UUID,
    request_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> bool:
    """Turn the request's hold into a booking of exactly ``[start, end)``: the slot
    shrinks to the booked part and what is left before and after becomes new
    available slots, in this transaction. False if the request no longer holds it.

    The slot keeps its id (the session points at it); it is shrunk before the
    remainders are inserted, so the no-overlap constraint holds at every statement.
    The remainders remember the slot as it was published, so that they merge back
    with the booked part once it is freed.
    """
    row = (
        await session.execute(
            select(
                Slot.status,
                Slot.held_by_request_id,
                Slot.start_time,
                Slot.end_time,
                Slot.carved_from_slot_id,
            )
            .where(Slot.id == slot_id)
            .with_for_update()
        )
    ).one_or_none()
    if row is None or row.status != SlotStatus.HELD.value or row.held_by_request_id != request_id:
        return False
    if start < row.start_time or end > row.end_time:
        return False
    consultant_id = (
        await session.execute(
            update(Slot)
            .where(Slot.id == slot_id)
            .values(
                start_time=start,
                end_time=end,
                status=SlotStatus.BOOKED.value,
                held_by_request_id=None,
                hold_expires_at=None,
            )
            .returning(Slot.consultant_user_id)
        )
    ).scalar_one()
    remainders = [(row.start_time, start), (end, row.end_time)]
    published = row.carved_from_slot_id or slot_id
    parts = [
        {
            "consultant_user_id": consultant_id,
            "start_time": a,
            "end_time": b,
            "carved_from_slot_id": published,
        }
        for a, b in remainders
        if a < b
    ]
    if parts:
        await session.execute(insert(Slot), parts)
    return True


async def free(session: AsyncSession, slot_id: uuid.UUID) -> None:
    """A booked slot is available again (its session was cancelled or moved), merged
    with the free pieces beside it that were carved from the same published slot."""
    freed = (
        await session.execute(
            update(Slot)
            .where(Slot.id == slot_id, Slot.status == SlotStatus.BOOKED.value)
            .values(status=SlotStatus.AVAILABLE.value)
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
