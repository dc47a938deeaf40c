"""Builds the configured meeting platform from the settings."""

from __future__ import annotations

from core.settings import MeetingProvider, Settings
from integrations.meetings.base import MeetingPlatform
from integrations.meetings.http import HttpMeetingPlatform
from integrations.meetings.room_link import RoomLinkPlatform


def build_meeting_platform(settings: Settings) -> MeetingPlatform:
    if settings.meeting_provider is MeetingProvider.HTTP:
        if settings.meeting_api_url is None:
            raise ValueError("BOOKING_MEETING_API_URL is required with the http meeting provider")
        secret = settings.meeting_api_token
        token = secret.get_secret_value() if secret is not None else None
        return HttpMeetingPlatform(
            settings.meeting_api_url,
            token=token,
            timeout=settings.meeting_api_timeout.total_seconds(),
        )
    return RoomLinkPlatform(settings.meeting_room_base_url)
