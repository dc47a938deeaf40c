"""Builds the activity callables a worker registers, bound to their dependencies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.assignment import AssignmentActivities
from activities.lifecycle import LifecycleActivities
from activities.meetings import MeetingActivities
from activities.transitions import TransitionActivities
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
    assignment = AssignmentActivities(session_factory)
    transitions = TransitionActivities(session_factory)
    lifecycle = LifecycleActivities(session_factory)
    meetings = MeetingActivities(
        session_factory, meeting_platform or build_meeting_platform(settings)
    )
    return [
        transitions.persist_request,
        assignment.find_candidates,
        assignment.hold_slot,
        assignment.release_hold,
        transitions.remind_confirmation,
        transitions.reject_request,
        transitions.cancel_request,
        transitions.reserve,
        lifecycle.reschedule_session,
        lifecycle.cancel_session,
        lifecycle.send_reminder,
        lifecycle.start_session,
        lifecycle.complete_session,
        lifecycle.mark_no_show,
        meetings.create_meeting,
        meetings.reschedule_meeting,
        meetings.cancel_meeting,
    ]
