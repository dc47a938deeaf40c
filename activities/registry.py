"""Builds the activity callables a worker registers, bound to their dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.erasure import ErasureActivities
from activities.export import ExportActivities
from activities.meetings import MeetingActivities
from activities.requests import RequestActivities
from activities.retention import RetentionActivities
from activities.sessions import SessionActivities
from core.settings import Settings
from integrations.meetings import MeetingPlatform, build_meeting_platform


def build_activities(
    session_factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    meeting_platform: MeetingPlatform | None = None,
) -> list[Callable[..., Any]]:
    """Every activity of the service, as bound methods of their dependency holders.

    ``meeting_platform`` replaces the configured one (tests, demos).
    """
    requests = RequestActivities(session_factory)
    sessions = SessionActivities(session_factory)
    meetings = MeetingActivities(
        session_factory, meeting_platform or build_meeting_platform(settings)
    )
    retention = RetentionActivities(session_factory)
    export = ExportActivities(session_factory)
    erasure = ErasureActivities(session_factory)
    return [
        requests.persist_request,
        requests.find_candidates,
        requests.hold_slot,
        requests.release_hold,
        requests.remind_confirmation,
        requests.reject_request,
        requests.cancel_request,
        sessions.reserve,
        sessions.reschedule_session,
        sessions.cancel_session,
        sessions.send_reminder,
        sessions.start_session,
        sessions.complete_session,
        sessions.mark_no_show,
        meetings.create_meeting,
        meetings.reschedule_meeting,
        meetings.cancel_meeting,
        retention.sweep_batch,
        export.collect_page,
        export.finish,
        erasure.record_step,
        erasure.close_for_booking,
        erasure.open_requests,
        erasure.settle_request,
        erasure.forget_workflows,
        erasure.delete_free_text,
        erasure.pseudonymise_events,
        erasure.pseudonymise_rows,
        erasure.finish,
    ]
