"""Meeting platforms: where a booked session gets its room (see ``base.MeetingPlatform``)."""

from integrations.meetings.base import (
    MeetingPlatform,
    MeetingPlatformError,
    MeetingRoom,
    MeetingSpec,
)
from integrations.meetings.factory import build_meeting_platform

__all__ = [
    "MeetingPlatform",
    "MeetingPlatformError",
    "MeetingRoom",
    "MeetingSpec",
    "build_meeting_platform",
]
