"""``ConsultationWorkflow``: the single writer of one consultation request's process.

``run`` is the only code that changes the request; the messages it reacts to
(updates, signals, the query) live in ``workflows.handlers``, its base class.
Every transition is one activity (one PostgreSQL transaction together with its
outbox event), then a search-attribute upsert and new current details, so the
Temporal UI shows what each request is waiting for. Because handlers only park
messages for ``run``, no two transitions ever interleave: no lock is needed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

# The payload converter recognises datetime and UUID fields by class identity,
# which the sandbox's proxied ``datetime`` breaks; these modules are pure (no I/O,
# no clock, no state), so they are shared with the sandbox as they are.
with workflow.unsafe.imports_passed_through():
    from core.vocabulary import (
        CancellationReason,
        DeclineReason,
        ErrorType,
        ParticipantRole,
        Party,
        RequestStatus,
        SessionStatus,
        StartRefusal,
        StatusReason,
        no_show_reason,
        no_show_status,
    )
    from workflows import calls, rules
    from workflows.contracts.activity_io import (
        AssignmentStep,
        CancelRequestInput,
        CancelSessionInput,
        ConfirmationReminderInput,
        FindCandidatesInput,
        HoldResult,
        HoldSlotInput,
        MeetingInput,
        MeetingRef,
        NoShowInput,
        PersistRequestInput,
        RejectRequestInput,
        ReleaseHoldInput,
        ReleaseOutcome,
        RescheduleSessionInput,
        ReserveInput,
        SessionReminderInput,
        SessionTransitionInput,
    )
    from workflows.contracts.messages import (
        AssignRequest,
        CancelRequest,
        DeclineRequest,
        NoShowReport,
        RequestDetails,
        RescheduleRequest,
    )
    from workflows.contracts.names import WORKFLOW_NAME
    from workflows.contracts.workflow_input import ConsultationInput
    from workflows.handlers import ConsultationHandlers, Decision
    from workflows.state import (
        ACTIVITY_FAILURES,
        Booking,
        Hold,
        Pending,
        business_error,
        rejection,
    )
    from workflows.timeline import (
        absent_party,
        cancellation_status_reason,
        cancelled_session_status,
        confirmation_deadline,
        earliest_start,
        hold_expiry,
        meeting_deadline,
        meeting_update_deadline,
        reminder_schedule,
    )

CLAIM_ROUNDS = 2
"""How often to re-rank after losing every candidate slot to other requests, before
waiting for the next assignment retry."""

MEETING_LAST_CALL = timedelta(seconds=30)
"""Less time than this before the meeting deadline is not worth a new call."""

# ``workflow.patched`` ids. Histories recorded before a patch replay the old path;
# workflows reaching the patched point since take the new one.
MEETING_UNTIL_DEADLINE = "meeting-retried-until-deadline"
"""The meeting is created beside the session loop and retried until the meeting
deadline; before, eight attempts, then the session was cancelled."""
MOVE_KEEPS_SESSION = "reschedule-keeps-session-when-meeting-move-fails"
"""A failed meeting move leaves the moved session as it is, retried in the
background; before, it cancelled the session."""


@workflow.defn(name=WORKFLOW_NAME)
class ConsultationWorkflow(ConsultationHandlers):
    @workflow.init
    def __init__(self, request: ConsultationInput) -> None:
        self._init_state(request)

    # --- the process ------------------------------------------------------------------

    @workflow.run
    async def run(self, request: ConsultationInput) -> RequestDetails:
        self._publish()
        if await self._persist():
            await self._assign_until_settled()
            if self._is_booked():
                await self._prepare_meeting()
            if self._is_booked():
                await self._run_session()
                await self._accept_no_show_reports()
        self._finish()
        # Updates delivered in this very activation have tasks that have not started
        # yet (so they do not count as in progress): let them run and get an answer.
        await asyncio.sleep(0)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._submit_error is not None:
            raise self._submit_error
        return self._details()

    async def _persist(self) -> bool:
        request = self._request
        try:
            persisted = await calls.persist_request(PersistRequestInput.of(request))
        except ACTIVITY_FAILURES as err:
            # Invalid input (unknown service type, reused idempotency key): the submit
            # update and the workflow fail with the activity's typed error.
            self._submit_error = business_error(err) or rejection(
                ErrorType.INVALID_REQUEST, "the request could not be stored"
            )
            return False
        self._requested_at = persisted.requested_at
        return True

    async def _assign_until_settled(self) -> None:
        """Assign, hold and get a confirmation until booked, rejected or cancelled."""
        while True:
            if self._cancel is not None:
                await self._cancel_before_booking(self._cancel)
                return
            if self._attempt >= self._timings.max_attempts:
                await self._reject(StatusReason.ATTEMPTS_EXHAUSTED)
                return
            if workflow.now() >= self._closes_at:
                await self._reject(StatusReason.NO_CONSULTANT_AVAILABLE)
                return
            operator = self._assign
            self._policy_in_the_way = None
            hold = await self._claim(operator.message if operator else None)
            if operator is not None:
                self._assign = None
                if hold is None:
                    operator.fail(self._no_fit_for_operator())
                    continue
                operator.resolve(self._details())
            if hold is None:
                await self._wait_for_retry()
            elif await self._await_confirmation(hold):
                return

    async def _claim(self, operator: AssignRequest | None) -> Hold | None:
        """Hold the best candidate's slot; a slot lost to another request means the
        next candidate. An operator's choice overrides ranking and exclusions."""
        request = self._request
        now = workflow.now()
        not_before = earliest_start(now, request.window_start, self._timings.minimum_notice)
        query = FindCandidatesInput(
            request_id=request.request_id,
            service_type_id=request.service_type_id,
            duration_minutes=request.duration_minutes,
            not_before=not_before,
            window_end=request.window_end,
            requested_slot_id=operator.slot_id if operator else request.requested_slot_id,
            preferred_consultant_id=request.preferred_consultant_id,
            only_consultant_id=operator.consultant_id if operator else request.only_consultant_id,
            excluded_consultant_ids=() if operator else tuple(self._excluded),
            start_interval_minutes=request.start_interval_minutes,
        )
        for _ in range(CLAIM_ROUNDS):
            found = await calls.find_candidates(query)
            if not found.candidates:
                self._policy_in_the_way = _refusal(found.refusal)
                return None
            for candidate in found.candidates:
                attempt = self._attempt + 1
                deadline = confirmation_deadline(now, candidate.start, self._timings)
                result = await self._hold_slot(
                    candidate.slot_id,
                    candidate.consultant_id,
                    not_before=not_before,
                    window_end=request.window_end,
                    expires_at=hold_expiry(now, deadline, self._timings),
                    assignment=AssignmentStep(attempt=attempt, confirmation_deadline=deadline),
                    start=request.requested_start,
                )
                self._policy_in_the_way = _refusal(result.refusal)
                if result.held and result.start is not None and result.end is not None:
                    self._attempt = attempt
                    self._hold = Hold(
                        consultant_id=candidate.consultant_id,
                        slot_id=result.slot_id or candidate.slot_id,
                        start=result.start,
                        end=result.end,
                        deadline=deadline,
                    )
                    self._set_status(RequestStatus.PENDING_CONFIRMATION)
                    return self._hold
        return None

    def _no_fit_for_operator(self) -> ApplicationError:
        """Why an operator's choice of consultant found no time: a scheduling policy
        when one stands in the way (named, so the operator knows what to change)."""
        return _time_refused(
            self._policy_in_the_way,
            rejection(
                ErrorType.NO_FITTING_SLOT, "that consultant has no free slot fitting the request"
            ),
        )

    async def _wait_for_retry(self) -> None:
        self._next_retry_at = min(
            workflow.now() + self._timings.assignment_retry_interval, self._closes_at
        )
        self._publish()
        await _sleep_until(
            self._next_retry_at,
            lambda: self._cancel is not None or self._assign is not None,
            "next assignment attempt",
        )
        self._next_retry_at = None

    async def _await_confirmation(self, hold: Hold) -> bool:
        """True once the request is settled (booked or cancelled); False to go on
        with the next candidate."""

        def answered() -> bool:
            return self._decision is not None or self._cancel is not None

        reminder_at = hold.deadline - self._timings.confirmation_reminder_before
        if reminder_at > workflow.now() and not await _sleep_until(
            reminder_at, answered, "confirmation reminder"
        ):
            await calls.remind_confirmation(
                ConfirmationReminderInput(
                    request_id=self._request.request_id,
                    consultant_id=hold.consultant_id,
                    attempt=self._attempt,
                    confirmation_deadline=hold.deadline,
                )
            )
        await _sleep_until(hold.deadline, answered, "confirmation deadline")

        decision = self._decision
        try:
            if self._cancel is not None:
                if decision is not None:
                    decision.fail(rejection(ErrorType.REQUEST_FINISHED, "it was cancelled"))
                await self._cancel_before_booking(self._cancel)
                return True
            if decision is None:
                await self._release(hold, ReleaseOutcome.CONFIRMATION_EXPIRED)
                return False
            if isinstance(decision.message, DeclineRequest):
                await self._release(hold, ReleaseOutcome.DECLINED, decision.message)
                decision.resolve(self._details())
                return False
            return await self._book(hold, decision)
        finally:
            self._decision = None

    async def _release(
        self, hold: Hold, outcome: ReleaseOutcome, decline: DeclineRequest | None = None
    ) -> None:
        # The state changes first, so no confirmation for this hold is accepted
        # while the database catches up.
        self._hold = None
        if outcome not in (ReleaseOutcome.HOLD_LOST, ReleaseOutcome.CONSULTANT_BUSY):
            self._excluded.append(hold.consultant_id)
        self._set_status(RequestStatus.PENDING_ASSIGNMENT)
        await self._release_hold(
            hold.slot_id, hold.consultant_id, outcome, decline.reason if decline else None
        )

    async def _book(self, hold: Hold, decision: Pending[Decision]) -> bool:
        request = self._request
        try:
            reserved = await calls.reserve(
                ReserveInput(
                    request_id=request.request_id,
                    session_id=workflow.uuid4(),
                    slot_id=hold.slot_id,
                    consultant_id=hold.consultant_id,
                    requester_id=request.requester_id,
                    service_type_id=request.service_type_id,
                    start=hold.start,
                    end=hold.end,
                )
            )
        except ACTIVITY_FAILURES as err:
            cause = business_error(err)
            if cause is not None and cause.type == ErrorType.CONSULTANT_BUSY:
                # An event in the consultant's calendar appeared over the held time
                # since the hold: the request goes on to the next candidate (the
                # consultant, too, at another time).
                await self._release(hold, ReleaseOutcome.CONSULTANT_BUSY)
                decision.fail(cause)
                return False
            if cause is None or cause.type != ErrorType.HOLD_LOST:
                raise
            # The hold lapsed and another request took the slot: not the
            # consultant's fault, so they stay eligible.
            await self._release(hold, ReleaseOutcome.HOLD_LOST)
            decision.fail(rejection(ErrorType.SLOT_UNAVAILABLE, "the slot was taken meanwhile"))
            return False
        self._hold = None
        self._booking = Booking(
            session_id=reserved.session_id,
            consultant_id=hold.consultant_id,
            slot_id=reserved.slot_id,
            start=reserved.start,
            end=reserved.end,
            reminders=reminder_schedule(reserved.start, self._timings, workflow.now()),
        )
        self._set_status(RequestStatus.SCHEDULED)
        decision.resolve(self._details())
        return True

    async def _prepare_meeting(self) -> None:
        booking = self._require_booking()
        if workflow.patched(MEETING_UNTIL_DEADLINE):
            self._meeting_tracked = True
            booking.meeting_deadline = meeting_deadline(
                booking.start, self._timings, workflow.now()
            )
            self._meeting_call.create(self._meeting_input(booking, booking.meeting_deadline))
            self._publish()
            return
        try:
            created = await calls.create_meeting(self._meeting_input(booking))
        except ACTIVITY_FAILURES:
            workflow.logger.warning("meeting platform failed for good; cancelling the session")
            await self._cancel_booking(
                Party.SYSTEM, None, CancellationReason.MEETING_PLATFORM_FAILURE
            )
            return
        booking.meeting_ready = True
        booking.reports_attendance = created.reports_attendance
        self._publish()

    async def _run_session(self) -> None:
        """From booked to completed, no-show or cancelled, on the session's clock."""
        booking = self._require_booking()
        while booking.status in (SessionStatus.SCHEDULED, SessionStatus.IN_PROGRESS):
            self._drop_stale_session_changes(booking)
            if self._meeting_call.finished:
                await self._settle_meeting_call(booking)
                continue
            if self._cancel is not None:
                await self._cancel_session_on_request(self._cancel)
                break
            if self._reschedule is not None:
                await self._move_booking(booking, self._reschedule)
                continue
            if self._no_show is not None:
                await self._record_reported_no_show(booking, self._no_show)
                break
            if self._meeting_overdue(booking):
                await self._give_up_meeting(booking)
                continue
            if await self._advance_session_clock(booking):
                continue
            await _sleep_until(
                self._next_session_moment(booking),
                self._session_wake_condition(),
                "next session moment",
            )
        # Past the session, a meeting still being moved (or made) is of no use.
        await self._meeting_call.stop()

    async def _settle_meeting_call(self, booking: Booking) -> None:
        """Act on how the meeting call ended: the platform made (or moved) the meeting,
        refused, or was still failing at the deadline."""
        outcome = self._meeting_call.take_outcome()
        if outcome.succeeded:
            if outcome.creating:
                booking.meeting_ready = True
                booking.reports_attendance = outcome.reports_attendance
            # Moved again while the call ran: the meeting follows to the latest time.
            booking.meeting_outdated = outcome.start != booking.start
            if booking.meeting_outdated:
                self._move_meeting(booking)
            self._publish()
            return
        if not outcome.creating:
            if outcome.start != booking.start:
                self._move_meeting(booking)  # a later move has its own deadline
                return
            # Never a reason to cancel: the meeting and its link still exist.
            workflow.logger.warning(
                "the meeting platform did not move the meeting; it keeps its old time"
            )
            return
        deadline = booking.meeting_deadline
        if outcome.refused or deadline is None or workflow.now() >= deadline:
            await self._give_up_meeting(booking)
            return
        # The server stops retrying once the next retry would start past the deadline
        # it was given, or the session moved later since: go on until the deadline,
        # unless only moments are left (the deadline's own timer then cancels).
        if deadline - workflow.now() >= MEETING_LAST_CALL:
            self._meeting_call.create(self._meeting_input(booking, deadline))

    def _meeting_overdue(self, booking: Booking) -> bool:
        """The meeting deadline passed with no meeting (the session moved earlier
        since the call was made, or its timeout has not been reported yet)."""
        deadline = booking.meeting_deadline
        return (
            deadline is not None
            and not booking.meeting_ready
            and booking.status is SessionStatus.SCHEDULED
            and workflow.now() >= deadline
        )

    async def _give_up_meeting(self, booking: Booking) -> None:
        """No meeting by the deadline, or refused for good: the session cannot
        happen, so it is cancelled (compensation). One that has started already (a
        booking at short notice) stays; a link can no longer help it."""
        booking.meeting_deadline = None
        if booking.status is SessionStatus.SCHEDULED:
            workflow.logger.warning("no meeting by its deadline; cancelling the session")
            await self._cancel_booking(
                Party.SYSTEM, None, CancellationReason.MEETING_PLATFORM_FAILURE
            )
            return
        await self._meeting_call.stop()
        workflow.logger.warning("the session started without a meeting")
        self._publish()

    def _move_meeting(self, booking: Booking) -> None:
        """Move the meeting to the session's time in the background."""
        booking.meeting_outdated = True
        now = workflow.now()
        self._meeting_call.move(
            self._meeting_input(booking, meeting_update_deadline(booking.start, now))
        )

    async def _advance_session_clock(self, booking: Booking) -> bool:
        """Make the one transition that is due now, if any (True if one was made)."""
        now = workflow.now()
        attendance = self._attendance
        if booking.status is SessionStatus.SCHEDULED:
            if attendance.meeting_started_at is not None or now >= booking.start:
                await self._start_session(booking, attendance.meeting_started_at or now)
                return True
            if booking.reminders and booking.reminders[0][1] <= now:
                offset, _ = booking.reminders.pop(0)
                await calls.send_reminder(
                    SessionReminderInput(
                        request_id=self._request.request_id,
                        session_id=booking.session_id,
                        session_start=booking.start,
                        offset_seconds=offset,
                    )
                )
                return True
            return False
        if attendance.meeting_ended_at is not None or now >= booking.end:
            await self._complete_session(booking, attendance.meeting_ended_at or now)
            return True
        if self._watches_attendance(booking) and now >= self._no_show_check_at(booking):
            booking.no_show_checked = True
            absent = absent_party(attendance)
            if absent is not None:
                await self._mark_no_show(booking, absent, Party.SYSTEM, None)
            return True
        return False

    async def _accept_no_show_reports(self) -> None:
        """A completed session may still be marked a no-show within the report window."""
        booking = self._require_booking()
        if booking.status is not SessionStatus.COMPLETED:
            return
        await _sleep_until(
            rules.report_window_end(booking, self._timings),
            lambda: self._no_show is not None,
            "no-show report window",
        )
        if self._no_show is not None:
            await self._record_reported_no_show(booking, self._no_show)

    def _finish(self) -> None:
        """Answer every update still waiting, so the workflow can close."""
        self._finished_at = workflow.now()
        finished = rejection(ErrorType.REQUEST_FINISHED, f"the request is {self._status.value}")
        if self._cancel is not None and self._status is RequestStatus.CANCELLED:
            # Cancelled meanwhile by someone else (or by a compensation): same outcome.
            self._cancel.resolve(self._details())
        for pending in (self._decision, self._cancel, self._assign, self._reschedule):
            if pending is not None:
                pending.fail(finished)
        if self._no_show is not None:
            self._no_show.fail(finished)
        self._publish()

    # --- transitions ------------------------------------------------------------------

    async def _reject(self, reason: StatusReason) -> None:
        self._set_status(RequestStatus.REJECTED, reason)
        await calls.reject_request(
            RejectRequestInput(request_id=self._request.request_id, reason=reason)
        )

    async def _cancel_before_booking(self, pending: Pending[CancelRequest]) -> None:
        message = pending.message
        reason = cancellation_status_reason(message.party, message.reason)
        self._hold = None
        self._set_status(RequestStatus.CANCELLED, reason)
        await calls.cancel_request(
            CancelRequestInput(
                request_id=self._request.request_id,
                party=message.party,
                actor_id=message.actor_id,
                reason=message.reason,
                status_reason=reason,
            )
        )
        pending.resolve(self._details())
        self._cancel = None

    async def _cancel_session_on_request(self, pending: Pending[CancelRequest]) -> None:
        message = pending.message
        await self._cancel_booking(message.party, message.actor_id, message.reason)
        pending.resolve(self._details())
        self._cancel = None

    async def _cancel_booking(
        self, party: Party, actor_id: uuid.UUID | None, reason: CancellationReason | None
    ) -> None:
        """Cancel the session, free its slot and cancel the request; then the meeting."""
        booking = self._require_booking()
        session_status = cancelled_session_status(party)
        status_reason = cancellation_status_reason(party, reason)
        booking.status = session_status
        self._set_status(RequestStatus.CANCELLED, status_reason)
        await calls.cancel_session(
            CancelSessionInput(
                request_id=self._request.request_id,
                session_id=booking.session_id,
                party=party,
                actor_id=actor_id,
                reason=reason,
                session_status=session_status,
                status_reason=status_reason,
            )
        )
        # A call cut short may have made a room after all (the activity itself
        # cancels one it can no longer store, the session being cancelled).
        cut_short = await self._meeting_call.stop()
        if booking.meeting_ready or cut_short:
            try:
                await calls.cancel_meeting(
                    MeetingRef(request_id=self._request.request_id, session_id=booking.session_id)
                )
            except ACTIVITY_FAILURES:
                # The booking is cancelled already; a leftover room harms nobody.
                workflow.logger.warning("could not cancel the meeting on the platform")

    async def _move_booking(self, booking: Booking, pending: Pending[RescheduleRequest]) -> None:
        """Hold the new slot first, then move the session and free the old slot in
        one transaction, then move the meeting."""
        try:
            await self._reschedule_to(booking, pending)
        finally:
            self._reschedule = None

    async def _reschedule_to(self, booking: Booking, pending: Pending[RescheduleRequest]) -> None:
        message = pending.message
        now = workflow.now()
        held = await self._hold_slot(
            message.slot_id,
            booking.consultant_id,
            not_before=earliest_start(now, now, self._timings.minimum_notice),
            window_end=None,
            expires_at=hold_expiry(now, None, self._timings),
            start=message.start,
        )
        to_slot_id = held.slot_id or message.slot_id
        if not held.held or held.start is None or held.end is None:
            pending.fail(
                _time_refused(
                    _refusal(held.refusal),
                    rejection(
                        ErrorType.SLOT_UNAVAILABLE,
                        "that slot is not a free slot of the consultant fitting the session",
                    ),
                )
            )
            return
        try:
            await calls.reschedule_session(
                RescheduleSessionInput(
                    request_id=self._request.request_id,
                    session_id=booking.session_id,
                    from_slot_id=booking.slot_id,
                    to_slot_id=to_slot_id,
                    start=held.start,
                    end=held.end,
                    party=message.party,
                )
            )
        except ACTIVITY_FAILURES as err:
            await self._release_hold(
                to_slot_id, booking.consultant_id, ReleaseOutcome.RESCHEDULE_ABANDONED
            )
            pending.fail(
                business_error(err)
                or rejection(ErrorType.INVALID_STATE, "the session could not be moved")
            )
            return
        booking.slot_id = to_slot_id
        booking.start = held.start
        booking.end = held.end
        booking.reminders = reminder_schedule(held.start, self._timings, now)
        booking.no_show_checked = False
        if booking.meeting_deadline is not None:  # still being created: more time now
            booking.meeting_deadline = meeting_deadline(held.start, self._timings, now)
        self._publish()
        if booking.meeting_ready:
            if self._meeting_tracked or workflow.patched(MOVE_KEEPS_SESSION):
                self._meeting_tracked = True
                booking.meeting_outdated = True
                if not self._meeting_call.active:  # else it follows when that call ends
                    self._move_meeting(booking)
                self._publish()
            else:
                try:
                    await calls.reschedule_meeting(self._meeting_input(booking))
                except ACTIVITY_FAILURES:
                    await self._cancel_booking(
                        Party.SYSTEM, None, CancellationReason.MEETING_PLATFORM_FAILURE
                    )
        pending.resolve(self._details())

    async def _start_session(self, booking: Booking, at: datetime) -> None:
        booking.status = SessionStatus.IN_PROGRESS
        booking.reminders.clear()
        self._publish()
        await calls.start_session(self._session_transition(booking, at))

    async def _complete_session(self, booking: Booking, at: datetime) -> None:
        booking.status = SessionStatus.COMPLETED
        self._set_status(RequestStatus.COMPLETED)
        await calls.complete_session(self._session_transition(booking, at))

    async def _mark_no_show(
        self,
        booking: Booking,
        absent: ParticipantRole,
        reported_by: Party,
        actor_id: uuid.UUID | None,
    ) -> None:
        booking.status = no_show_status(absent)
        # The request is fulfilled either way; its reason says who missed the session.
        self._set_status(RequestStatus.COMPLETED, no_show_reason(absent))
        await calls.mark_no_show(
            NoShowInput(
                request_id=self._request.request_id,
                session_id=booking.session_id,
                absent=absent,
                reported_by=reported_by,
                actor_id=actor_id,
                attendance=self._attendance,
            )
        )

    async def _record_reported_no_show(
        self, booking: Booking, pending: Pending[NoShowReport]
    ) -> None:
        report = pending.message
        await self._mark_no_show(booking, report.absent, report.party, report.actor_id)
        pending.resolve(self._details())
        self._no_show = None

    # --- session timing ---------------------------------------------------------------

    def _watches_attendance(self, booking: Booking) -> bool:
        """Automatic no-shows only where the platform reports who joined."""
        reports = booking.reports_attendance or self._attendance_reported
        return reports and not booking.no_show_checked

    def _no_show_check_at(self, booking: Booking) -> datetime:
        return booking.start + self._timings.no_show_grace

    def _next_session_moment(self, booking: Booking) -> datetime:
        moments = [booking.end]
        if booking.status is SessionStatus.SCHEDULED:
            moments.append(booking.start)
            if booking.reminders:
                moments.append(booking.reminders[0][1])
            if booking.meeting_deadline is not None and not booking.meeting_ready:
                moments.append(booking.meeting_deadline)
        elif self._watches_attendance(booking):
            moments.append(self._no_show_check_at(booking))
        return min(moments)

    def _session_wake_condition(self) -> Callable[[], bool]:
        seen = self._signals_seen
        return lambda: (
            self._cancel is not None
            or self._reschedule is not None
            or self._no_show is not None
            or self._signals_seen != seen
            or self._meeting_call.finished
        )

    def _drop_stale_session_changes(self, booking: Booking) -> None:
        """A cancel or reschedule accepted just before the session started can no
        longer apply."""
        if booking.status is SessionStatus.SCHEDULED:
            return
        started = rejection(ErrorType.INVALID_STATE, "the session has already started")
        if self._cancel is not None:
            self._cancel.fail(started)
            self._cancel = None
        if self._reschedule is not None:
            self._reschedule.fail(started)
            self._reschedule = None

    # --- small helpers ------------------------------------------------------------------

    async def _hold_slot(
        self,
        slot_id: uuid.UUID,
        consultant_id: uuid.UUID,
        *,
        not_before: datetime,
        window_end: datetime | None,
        expires_at: datetime,
        assignment: AssignmentStep | None = None,
        start: datetime | None = None,
    ) -> HoldResult:
        """Hold the session's time for this request: ``start`` (a chosen one) or the
        earliest start ``slot_id`` offers from ``not_before`` (and, with an
        assignment, assign its consultant)."""
        return await calls.hold_slot(
            HoldSlotInput(
                request_id=self._request.request_id,
                slot_id=slot_id,
                consultant_id=consultant_id,
                duration_minutes=self._request.duration_minutes,
                not_before=not_before,
                window_end=window_end,
                hold_expires_at=expires_at,
                assignment=assignment,
                start=start,
                start_interval_minutes=self._request.start_interval_minutes,
            )
        )

    async def _release_hold(
        self,
        slot_id: uuid.UUID,
        consultant_id: uuid.UUID,
        outcome: ReleaseOutcome,
        decline_reason: DeclineReason | None = None,
    ) -> None:
        await calls.release_hold(
            ReleaseHoldInput(
                request_id=self._request.request_id,
                slot_id=slot_id,
                consultant_id=consultant_id,
                attempt=self._attempt,
                outcome=outcome,
                decline_reason=decline_reason,
            )
        )

    def _is_booked(self) -> bool:
        return self._booking is not None and self._status is RequestStatus.SCHEDULED

    def _require_booking(self) -> Booking:
        assert self._booking is not None, "no session booked"
        return self._booking

    def _meeting_input(self, booking: Booking, deadline: datetime | None = None) -> MeetingInput:
        return MeetingInput(
            request_id=self._request.request_id,
            session_id=booking.session_id,
            start=booking.start,
            end=booking.end,
            deadline=deadline,
        )

    def _session_transition(self, booking: Booking, at: datetime) -> SessionTransitionInput:
        return SessionTransitionInput(
            request_id=self._request.request_id,
            session_id=booking.session_id,
            at=at,
            attendance=self._attendance,
        )


async def _sleep_until(at: datetime, wake: Callable[[], bool], summary: str) -> bool:
    """Wait until ``wake()`` holds (True) or the moment ``at`` arrives (False)."""
    if wake():
        return True
    remaining = at - workflow.now()
    if remaining <= timedelta(0):
        return False
    try:
        await workflow.wait_condition(wake, timeout=remaining, timeout_summary=summary)
    except TimeoutError:
        return wake()
    return True


def _refusal(value: str | None) -> StartRefusal | None:
    """An activity's refusal value; one this code does not know counts as none."""
    try:
        return None if value is None else StartRefusal(value)
    except ValueError:
        return None


def _time_refused(refused: StartRefusal | None, otherwise: ApplicationError) -> ApplicationError:
    """The rejection naming what stands in the way of a time: a scheduling policy, or
    the consultant's calendar; ``otherwise`` when it is neither."""
    if refused is StartRefusal.CALENDAR_BUSY:
        return rejection(ErrorType.CONSULTANT_BUSY, refused.explanation)
    if refused is not None and refused.is_policy:
        return _policy_rejection(refused)
    return otherwise


def _policy_rejection(refused: StartRefusal) -> ApplicationError:
    """A refusal naming the scheduling policy (its value travels in the details)."""
    return ApplicationError(
        f"a scheduling policy forbids it: {refused.explanation}",
        refused.value,
        type=ErrorType.SCHEDULING_POLICY.value,
        non_retryable=True,
    )
