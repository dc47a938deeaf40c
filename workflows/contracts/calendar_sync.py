"""What crosses the boundary of a consultant's calendar sync: its names, its input,
its signal, its activities' input and output. Ids, counts and outcomes only: an
address, a password or an event never passes through the workflow's history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from core.vocabulary import CalendarSyncOutcome

WORKFLOW_NAME = "CalendarSyncWorkflow"
WORKFLOW_ID_PREFIX = "calendar-sync-"
SYNC_NOW_SIGNAL = "sync_now"

ROUNDS_PER_RUN = 100
"""Rounds (each a few activities) before the workflow continues as new: at 15 minutes
a day's worth, and a history of some thousand events."""


def calendar_sync_workflow_id(consultant_id: uuid.UUID) -> str:
    """The one sync workflow of a consultant: ``calendar-sync-<uuid>``."""
    return f"{WORKFLOW_ID_PREFIX}{consultant_id}"


class CalendarActivity(StrEnum):
    LIST_CALENDARS = "calendar.list_calendars"
    SYNC_CALENDAR = "calendar.sync"


@dataclass(frozen=True, kw_only=True)
class CalendarSyncInput:
    """``interval_seconds`` between periodic rounds (``BOOKING_CALENDAR_SYNC_INTERVAL``,
    copied at start; seconds, as the JSON converter has no timedelta). ``pending``: the
    calendars asked for while the previous run ended (``sync_everything``: all of them),
    carried over ``continue_as_new``."""

    consultant_id: uuid.UUID
    interval_seconds: float
    rounds_per_run: int = ROUNDS_PER_RUN
    pending: tuple[uuid.UUID, ...] = ()
    sync_everything: bool = True


@dataclass(frozen=True, kw_only=True)
class SyncNow:
    """Sync this calendar now, or all of the consultant's (``calendar_id`` None)."""

    calendar_id: uuid.UUID | None = None


@dataclass(frozen=True, kw_only=True)
class ListCalendarsInput:
    consultant_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class CalendarList:
    calendar_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, kw_only=True)
class SyncCalendarInput:
    calendar_id: uuid.UUID


@dataclass(frozen=True, kw_only=True)
class SyncCalendarResult:
    """The error itself stays in the calendar's row (where the API shows it)."""

    calendar_id: uuid.UUID
    outcome: CalendarSyncOutcome
    busy_intervals: int = 0


@dataclass(kw_only=True)
class CalendarSyncSummary:
    """What the run did, per outcome, over all its rounds."""

    rounds: int = 0
    outcomes: dict[CalendarSyncOutcome, int] = field(default_factory=dict)
