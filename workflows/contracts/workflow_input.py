"""The start argument of a request's workflow."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings


def _seconds(value: timedelta) -> float:
    return value.total_seconds()


@dataclass(frozen=True, kw_only=True)
class LifecycleTimings:
    """Every duration of the process, copied from the settings at submission so a
    running workflow is not affected by a later configuration change."""

    confirmation_timeout_seconds: float
    confirmation_reminder_before_seconds: float
    assignment_retry_interval_seconds: float
    max_attempts: int
    minimum_notice_seconds: float
    hold_ttl_seconds: float
    reminder_offsets_seconds: tuple[float, ...]
    no_show_grace_seconds: float
    no_show_report_window_seconds: float
    requester_cancel_cutoff_seconds: float
    # Workflows submitted before this setting existed get its default (15 min).
    meeting_deadline_before_start_seconds: float = 900.0
    # The service type's reschedule cutoff; None (workflows submitted before it
    # existed): the cancel cutoff, as it was then.
    requester_reschedule_cutoff_seconds: float | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, *, confirmation_timeout_override: timedelta | None = None
    ) -> LifecycleTimings:
        """The service type's confirmation timeout, when it has one, wins."""
        timeout = confirmation_timeout_override or settings.confirmation_timeout
        return cls(
            confirmation_timeout_seconds=_seconds(timeout),
            confirmation_reminder_before_seconds=_seconds(settings.confirmation_reminder_before),
            assignment_retry_interval_seconds=_seconds(settings.assignment_retry_interval),
            max_attempts=settings.max_assignment_attempts,
            minimum_notice_seconds=_seconds(settings.minimum_notice),
            hold_ttl_seconds=_seconds(settings.hold_ttl),
            reminder_offsets_seconds=tuple(
                sorted((_seconds(offset) for offset in settings.reminder_offsets), reverse=True)
            ),
            no_show_grace_seconds=_seconds(settings.no_show_grace),
            no_show_report_window_seconds=_seconds(settings.no_show_report_window),
            requester_cancel_cutoff_seconds=_seconds(settings.requester_cancel_cutoff),
            meeting_deadline_before_start_seconds=_seconds(settings.meeting_deadline_before_start),
        )

    @property
    def confirmation_timeout(self) -> timedelta:
        return timedelta(seconds=self.confirmation_timeout_seconds)

    @property
    def confirmation_reminder_before(self) -> timedelta:
        return timedelta(seconds=self.confirmation_reminder_before_seconds)

    @property
    def assignment_retry_interval(self) -> timedelta:
        return timedelta(seconds=self.assignment_retry_interval_seconds)

    @property
    def minimum_notice(self) -> timedelta:
        return timedelta(seconds=self.minimum_notice_seconds)

    @property
    def hold_ttl(self) -> timedelta:
        return timedelta(seconds=self.hold_ttl_seconds)

    @property
    def reminder_offsets(self) -> list[timedelta]:
        return [timedelta(seconds=offset) for offset in self.reminder_offsets_seconds]

    @property
    def no_show_grace(self) -> timedelta:
        return timedelta(seconds=self.no_show_grace_seconds)

    @property
    def no_show_report_window(self) -> timedelta:
        return timedelta(seconds=self.no_show_report_window_seconds)

    @property
    def requester_cancel_cutoff(self) -> timedelta:
        return timedelta(seconds=self.requester_cancel_cutoff_seconds)

    @property
    def requester_reschedule_cutoff(self) -> timedelta:
        seconds = self.requester_reschedule_cutoff_seconds
        return self.requester_cancel_cutoff if seconds is None else timedelta(seconds=seconds)

    @property
    def meeting_deadline_before_start(self) -> timedelta:
        return timedelta(seconds=self.meeting_deadline_before_start_seconds)


@dataclass(frozen=True, kw_only=True)
class ConsultationInput:
    """Start argument of one request's workflow.

    ``window_start``/``window_end`` bound when the session may take place (the API
    fills them from the preferred window, the requested slot, the requested start,
    or the default window). ``requested_start`` is a start the learner chose: the
    window is then exactly that session, only its consultant (the requested slot's,
    or else the preferred one) serves it, and exactly that time is held.
    ``start_interval_minutes`` is the service type's start step at submission (None
    in requests from before starts had a grid: any whole minute).
    ``idempotency_key`` is the client's key, kept for the unique (requester, key) row.
    ``details_staged`` says the API staged the request's details text under
    ``request_id`` for ``persist_request`` to move into the row (see ``activities``).
    ``open_request_cap``: how many open requests the learner may have, this one
    included; ``persist_request`` enforces it (``None``: no cap, as before it existed).
    ``learner_time_zone``: the learner's IANA zone, stored with the request for their
    wall time in responses and events (``None`` in requests from before it existed:
    ``BOOKING_DEFAULT_LEARNER_TIME_ZONE`` applies when they are read).
    ``service_type_name``: the type's name at submission, only for what operators
    see in the Temporal UI (None in requests from before it was carried: its id
    is shown instead). Catalogue data, not personal data.
    """

    request_id: uuid.UUID
    requester_id: uuid.UUID
    service_type_id: uuid.UUID
    duration_minutes: int
    window_start: datetime
    window_end: datetime
    timings: LifecycleTimings
    requested_slot_id: uuid.UUID | None = None
    preferred_consultant_id: uuid.UUID | None = None
    company_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    details_staged: bool = False
    open_request_cap: int | None = None
    requested_start: datetime | None = None
    start_interval_minutes: int | None = None
    learner_time_zone: str | None = None
    service_type_name: str | None = None

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)

    @property
    def only_consultant_id(self) -> uuid.UUID | None:
        """Who alone may serve the request: with a requested start but no slot, the
        consultant it was chosen with (a requested slot binds by itself)."""
        if self.requested_start is None or self.requested_slot_id is not None:
            return None
        return self.preferred_consultant_id
