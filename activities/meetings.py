"""The ``session.*_meeting`` activities: the session's meeting on the meeting platform.

Platform calls happen outside any database transaction (a slow platform must not
hold row locks); the database is read before and written after. Idempotent: a
session that already has a room keeps it, and the platform calls carry the
session id as their idempotency key. A permanent platform refusal is a
non-retryable ``MeetingPlatformRejected``: the workflow then compensates. A
transient one is retried until the workflow's meeting deadline; the first one
announces ``session.meeting_pending``. A room made for a session cancelled
meanwhile is not stored but cancelled on the platform again.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import SessionFactory, transaction
from core.events import EventType
from core.vocabulary import ErrorType
from db import sessions
from db.outbox import emit
from integrations.meetings import MeetingPlatform, MeetingPlatformError, MeetingRoom, MeetingSpec
from workflows.contracts.activity_io import MeetingCreated, MeetingInput, MeetingRef
from workflows.contracts.names import ActivityName

ResultT = TypeVar("ResultT")
PLATFORM_UNAVAILABLE = "MeetingPlatformUnavailable"


class MeetingActivities:
    def __init__(self, session_factory: SessionFactory, platform: MeetingPlatform) -> None:
        self._sessions = session_factory
        self._platform = platform

    @activity.defn(name=ActivityName.CREATE_MEETING)
    async def create_meeting(self, arg: MeetingInput) -> MeetingCreated:
        created = MeetingCreated(reports_attendance=self._platform.reports_attendance)
        if await self._room(arg.session_id) is not None:
            return created  # a retry after the room was stored
        spec = MeetingSpec(session_id=arg.session_id, start=arg.start, end=arg.end)
        try:
            room = await _call_platform(self._platform.create(spec))
        except ApplicationError as error:
            if not error.non_retryable and arg.deadline is not None:
                await self._announce_pending(arg)
            raise
        async with transaction(self._sessions) as session:
            stored = await sessions.store_first_meeting_room(
                session,
                arg.session_id,
                platform_session_id=room.platform_session_id,
                join_url=room.join_url,
            )
            orphaned = not stored and not await sessions.is_live(session, arg.session_id)
            if stored:
                # The join link stays out of the event (it is the room's only key):
                # subscribers read it with the session.
                await emit(
                    session,
                    EventType.SESSION_MEETING_READY,
                    subject=arg.session_id,
                    request_id=arg.request_id,
                    session_id=arg.session_id,
                    payload={"start": arg.start, "end": arg.end},
                )
        if orphaned:
            # The session was cancelled while the platform made its room.
            await _call_platform(self._platform.cancel(room, arg.session_id))
        return created

    async def _announce_pending(self, arg: MeetingInput) -> None:
        """Tell subscribers the link is late (once per start the session has), while
        the session waits for its meeting."""
        async with transaction(self._sessions) as session:
            if await sessions.awaits_meeting(session, arg.session_id, arg.start):
                await emit(
                    session,
                    EventType.SESSION_MEETING_PENDING,
                    subject=arg.session_id,
                    occurrence=(arg.start.isoformat(),),
                    request_id=arg.request_id,
                    session_id=arg.session_id,
                    payload={"start": arg.start, "end": arg.end, "deadline": arg.deadline},
                )

    @activity.defn(name=ActivityName.RESCHEDULE_MEETING)
    async def reschedule_meeting(self, arg: MeetingInput) -> None:
        room = await self._room(arg.session_id)
        if room is None:
            return
        spec = MeetingSpec(session_id=arg.session_id, start=arg.start, end=arg.end)
        moved = await _call_platform(self._platform.reschedule(room, spec))
        if moved == room:
            return
        async with transaction(self._sessions) as session:
            await sessions.replace_meeting_room(
                session,
                arg.session_id,
                platform_session_id=moved.platform_session_id,
                join_url=moved.join_url,
            )
            # The platform gave the moved meeting a new link, which subscribers read
            # with the session after ``session.rescheduled`` (committed before this):
            # announce it, once per start the session was moved to.
            await emit(
                session,
                EventType.SESSION_MEETING_READY,
                subject=arg.session_id,
                occurrence=(arg.start.isoformat(),),
                request_id=arg.request_id,
                session_id=arg.session_id,
                payload={"start": arg.start, "end": arg.end},
            )

    @activity.defn(name=ActivityName.CANCEL_MEETING)
    async def cancel_meeting(self, arg: MeetingRef) -> None:
        room = await self._room(arg.session_id)
        if room is not None:
            await _call_platform(self._platform.cancel(room, arg.session_id))

    async def _room(self, session_id: uuid.UUID) -> MeetingRoom | None:
        async with transaction(self._sessions) as session:
            row = await sessions.meeting_room(session, session_id)
        if row is None or row.join_url is None:
            return None
        return MeetingRoom(
            platform_session_id=row.platform_session_id or "",
            join_url=row.join_url,
        )


async def _call_platform(call: Awaitable[ResultT]) -> ResultT:
    """The platform's verdict as Temporal understands it: permanent or worth a retry."""
    try:
        return await call
    except MeetingPlatformError as error:
        if error.permanent:
            raise ApplicationError(
                str(error), type=ErrorType.MEETING_PLATFORM_REJECTED.value, non_retryable=True
            ) from error
        raise ApplicationError(str(error), type=PLATFORM_UNAVAILABLE) from error
