"""The default platform: a room URL nobody can guess, on a room service that needs no
API (``BOOKING_MEETING_ROOM_BASE_URL``, e.g. a Jitsi server). Nothing to move or
cancel there, and no attendance reports."""

from __future__ import annotations

import secrets
import uuid

from integrations.meetings.base import MeetingRoom, MeetingSpec

ROOM_TOKEN_BYTES = 24
"""192 random bits: the link is the only key to the room."""


class RoomLinkPlatform:
    def __init__(self, base_url: str) -> None:
        self._base_url = base_url.rstrip("/")

    @property
    def reports_attendance(self) -> bool:
        return False

    async def create(self, spec: MeetingSpec) -> MeetingRoom:
        del spec  # the room does not depend on the time; the caller keeps it idempotent
        token = secrets.token_urlsafe(ROOM_TOKEN_BYTES)
        return MeetingRoom(platform_session_id=token, join_url=f"{self._base_url}/{token}")

    async def reschedule(self, room: MeetingRoom, spec: MeetingSpec) -> MeetingRoom:
        del spec
        return room

    async def cancel(self, room: MeetingRoom, session_id: uuid.UUID) -> None:
        del room, session_id
