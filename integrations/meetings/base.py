"""The one interface the meeting activities need from a meeting platform."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class MeetingSpec:
    """A session's meeting: the session id doubles as the idempotency key, so a
    retried create or move never makes a second room."""

    session_id: uuid.UUID
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class MeetingRoom:
    platform_session_id: str
    join_url: str


class MeetingPlatformError(Exception):
    """A call failed. ``permanent``: retrying the same call cannot succeed (the
    platform refused it); otherwise it may (timeouts, 5xx, rate limits)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class MeetingPlatform(Protocol):
    @property
    def reports_attendance(self) -> bool:
        """Whether the platform tells us (by webhook) who joined; automatic no-shows
        only apply where it does."""
        ...

    async def create(self, spec: MeetingSpec) -> MeetingRoom: ...

    async def reschedule(self, room: MeetingRoom, spec: MeetingSpec) -> MeetingRoom: ...

    async def cancel(self, room: MeetingRoom, session_id: uuid.UUID) -> None:
        """Idempotent: cancelling a room that is gone already succeeds."""
        ...
