"""The messages of ``ConsultationWorkflow``: its updates, signals and query, and the
state they read (the base class of the workflow, which owns the process).

Update handlers never change the request themselves: a validator rejects what is
not allowed now (before anything is written to history), the handler parks the
message as a ``Pending`` and waits for the workflow's main loop to decide its
outcome. The ``Pending`` stays parked until then, so a conflicting second update
is refused as busy meanwhile. Signals only record attendance.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate, SearchAttributeValueType

# Pure modules, shared with the sandbox as they are (see ``workflows.consultation``).
with workflow.unsafe.imports_passed_through():
    from core.vocabulary import (
        ErrorType,
        ParticipantRole,
        RequestStatus,
        StartRefusal,
        StatusReason,
    )
    from workflows import rules
    from workflows.contracts.activity_io import Attendance
    from workflows.contracts.messages import (
        AssignRequest,
        CancelRequest,
        ConfirmRequest,
        DeclineRequest,
        MeetingEnded,
        MeetingStarted,
        NoShowReport,
        ParticipantJoined,
        ParticipantLeft,
        RequestDetails,
        RescheduleRequest,
        SubmitRequest,
    )
    from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings
    from workflows.meeting_call import MeetingCall
    from workflows.presentation import describe
    from workflows.search_attributes import (
        BOOKING_STATUS,
        CONSULTANT_ID,
        MEETING_STATUS,
        REQUESTER_ID,
        SERVICE_TYPE_ID,
        SESSION_START,
    )
    from workflows.state import Booking, Hold, Pending, rejection
    from workflows.timeline import assignment_closes_at

Decision = ConfirmRequest | DeclineRequest
MessageT = TypeVar("MessageT")


class ConsultationHandlers:
    def _init_state(self, request: ConsultationInput) -> None:
        self._request = request
        self._timings: LifecycleTimings = request.timings
        self._closes_at: datetime = assignment_closes_at(request)
        self._status = RequestStatus.PENDING_ASSIGNMENT
        self._status_reason: StatusReason | None = None
        self._requested_at: datetime | None = None
        self._submit_error: Exception | None = None
        self._finished_at: datetime | None = None
        self._attempt = 0
        self._excluded: list[uuid.UUID] = []
        self._next_retry_at: datetime | None = None
        # The scheduling policy that kept the last claim from a time, if one did.
        self._policy_in_the_way: StartRefusal | None = None
        self._hold: Hold | None = None
        self._booking: Booking | None = None
        self._meeting_call = MeetingCall()
        # Whether this run publishes ``MeetingStatus``: only from the point where it
        # took the code path that retries the meeting until a deadline (histories
        # recorded before that path existed must replay without the upserts).
        self._meeting_tracked = False
        self._attendance = Attendance()
        self._attendance_reported = False
        self._signals_seen = 0
        self._decision: Pending[Decision] | None = None
        self._cancel: Pending[CancelRequest] | None = None
        self._assign: Pending[AssignRequest] | None = None
        self._reschedule: Pending[RescheduleRequest] | None = None
        self._no_show: Pending[NoShowReport] | None = None
        # What the starter already set needs no upsert (each upsert is a history event).
        self._published: dict[str, object] = {
            pair.key.name: pair.value for pair in workflow.info().typed_search_attributes
        }

    # --- updates (names are part of the API: the method names) --------------------------

    @workflow.update
    async def submit(self, message: SubmitRequest) -> RequestDetails:
        """Update-with-start target: returns once the request row is stored."""
        del message  # everything is in the workflow input
        await workflow.wait_condition(
            lambda: self._requested_at is not None or self._submit_error is not None
        )
        if self._submit_error is not None:
            raise self._submit_error
        return self._details()

    @workflow.update
    async def confirm(self, message: ConfirmRequest) -> RequestDetails:
        self._decision = Pending[Decision](message)
        return await _outcome(self._decision)

    @confirm.validator
    def _validate_confirm(self, message: ConfirmRequest) -> None:
        self._validate_decision(message.consultant_id)

    @workflow.update
    async def decline(self, message: DeclineRequest) -> RequestDetails:
        self._decision = Pending[Decision](message)
        return await _outcome(self._decision)

    @decline.validator
    def _validate_decline(self, message: DeclineRequest) -> None:
        self._validate_decision(message.consultant_id)

    @workflow.update
    async def cancel(self, message: CancelRequest) -> RequestDetails:
        self._cancel = Pending(message)
        return await _outcome(self._cancel)

    @cancel.validator
    def _validate_cancel(self, message: CancelRequest) -> None:
        self._require_open_and_idle(self._cancel, self._reschedule)
        rules.check_cancel(
            message,
            requester_id=self._request.requester_id,
            booking=self._booking,
            timings=self._timings,
            now=workflow.now(),
        )

    @workflow.update
    async def reschedule(self, message: RescheduleRequest) -> RequestDetails:
        self._reschedule = Pending(message)
        return await _outcome(self._reschedule)

    @reschedule.validator
    def _validate_reschedule(self, message: RescheduleRequest) -> None:
        self._require_open_and_idle(self._reschedule, self._cancel, what="session")
        rules.check_reschedule(
            message,
            requester_id=self._request.requester_id,
            booking=self._booking,
            timings=self._timings,
            now=workflow.now(),
        )

    @workflow.update
    async def assign(self, message: AssignRequest) -> RequestDetails:
        self._assign = Pending(message)
        return await _outcome(self._assign)

    @assign.validator
    def _validate_assign(self, message: AssignRequest) -> None:
        del message  # any consultant may be chosen; the candidate query checks the fit
        self._require_open_and_idle(self._assign, self._cancel)
        rules.check_assign(status=self._status, hold=self._hold)

    @workflow.update
    async def report_no_show(self, message: NoShowReport) -> RequestDetails:
        self._no_show = Pending(message)
        return await _outcome(self._no_show)

    @report_no_show.validator
    def _validate_report_no_show(self, message: NoShowReport) -> None:
        if self._finished_at is not None:
            raise rejection(ErrorType.INVALID_STATE, "the request is finished")
        if self._no_show is not None:
            raise rejection(ErrorType.BUSY, "a no-show report is already in progress")
        rules.check_no_show_report(
            message, booking=self._booking, timings=self._timings, now=workflow.now()
        )

    def _validate_decision(self, consultant_id: uuid.UUID) -> None:
        self._require_open()
        rules.check_decision(
            status=self._status,
            hold=self._hold,
            consultant_id=consultant_id,
            now=workflow.now(),
            busy=self._decision is not None or self._cancel is not None,
        )

    def _require_open(self) -> None:
        rules.require_open(self._status, self._finished_at is not None)

    def _require_open_and_idle(self, *changes: Pending[Any] | None, what: str = "request") -> None:
        """Open, and none of the ``changes`` that would conflict with this one pending."""
        self._require_open()
        if any(change is not None for change in changes):
            raise rejection(ErrorType.BUSY, f"another change of this {what} is in progress")

    # --- signals from the meeting platform ----------------------------------------------

    @workflow.signal
    def meeting_started(self, message: MeetingStarted) -> None:
        if self._attendance.meeting_started_at is None:
            self._record_attendance(meeting_started_at=message.occurred_at)

    @workflow.signal
    def participant_joined(self, message: ParticipantJoined) -> None:
        if message.role is ParticipantRole.LEARNER:
            if self._attendance.learner_joined_at is None:
                self._record_attendance(learner_joined_at=message.occurred_at)
        elif self._attendance.consultant_joined_at is None:
            self._record_attendance(consultant_joined_at=message.occurred_at)

    @workflow.signal
    def participant_left(self, message: ParticipantLeft) -> None:
        # Leaving early is not a no-show; it only shows the platform reports attendance.
        del message
        self._record_attendance()

    @workflow.signal
    def meeting_ended(self, message: MeetingEnded) -> None:
        if self._attendance.meeting_ended_at is None:
            self._record_attendance(meeting_ended_at=message.occurred_at)

    def _record_attendance(self, **changes: datetime) -> None:
        self._attendance = replace(self._attendance, **changes)
        self._attendance_reported = True
        self._signals_seen += 1

    # --- queries ----------------------------------------------------------------------

    @workflow.query
    def details(self) -> RequestDetails:
        return self._details()

    # --- state presentation -------------------------------------------------------------

    def _details(self) -> RequestDetails:
        hold, booking = self._hold, self._booking
        consultant = hold.consultant_id if hold else booking.consultant_id if booking else None
        return RequestDetails(
            request_id=self._request.request_id,
            status=self._status,
            status_reason=self._status_reason,
            requested_at=self._requested_at,
            attempt=self._attempt,
            max_attempts=self._timings.max_attempts,
            assigned_consultant_id=consultant,
            held_slot_id=hold.slot_id if hold else None,
            confirmation_deadline=hold.deadline if hold else None,
            next_assignment_retry_at=self._next_retry_at,
            assignment_closes_at=self._closes_at,
            session_id=booking.session_id if booking else None,
            session_status=booking.status if booking else None,
            session_start=booking.start if booking else None,
            session_end=booking.end if booking else None,
            meeting_ready=booking.meeting_ready if booking else False,
            finished_at=self._finished_at,
            meeting_status=booking.meeting_status if booking else None,
            meeting_deadline=(
                booking.meeting_deadline if booking and not booking.meeting_ready else None
            ),
        )

    def _set_status(self, status: RequestStatus, reason: StatusReason | None = None) -> None:
        self._status = status
        self._status_reason = reason
        self._publish()

    def _publish(self) -> None:
        """Search attributes (only those that changed: each upsert is a history event)
        and the live details shown in the Temporal UI."""
        details = self._details()
        consultant = details.assigned_consultant_id
        updates: list[SearchAttributeUpdate[Any]] = []
        self._stage(updates, BOOKING_STATUS, details.status.value)
        self._stage(updates, REQUESTER_ID, str(self._request.requester_id))
        self._stage(updates, SERVICE_TYPE_ID, str(self._request.service_type_id))
        self._stage(updates, CONSULTANT_ID, str(consultant) if consultant else None)
        self._stage(updates, SESSION_START, details.session_start)
        if self._meeting_tracked and details.meeting_status is not None:
            self._stage(updates, MEETING_STATUS, details.meeting_status.value)
        if updates:
            workflow.upsert_search_attributes(updates)
        booking = self._booking
        reports_until = rules.report_window_end(booking, self._timings) if booking else None
        # Metadata answered by a query, not a command: replay does not see it.
        workflow.set_current_details(
            describe(
                details,
                self._request,
                now=workflow.now(),
                hold=self._hold,
                reports_until=reports_until,
            )
        )

    def _stage(
        self,
        updates: list[SearchAttributeUpdate[Any]],
        key: SearchAttributeKey[SearchAttributeValueType],
        value: SearchAttributeValueType | None,
    ) -> None:
        if self._published.get(key.name) == value:
            return
        self._published[key.name] = value
        updates.append(key.value_unset() if value is None else key.value_set(value))


async def _outcome(pending: Pending[MessageT]) -> RequestDetails:
    """What an update handler returns: the outcome ``run`` decided for it."""
    await workflow.wait_condition(lambda: pending.done)
    return pending.outcome()
