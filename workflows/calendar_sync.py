"""``CalendarSyncWorkflow``: keeps one consultant's busy time in step with their
linked calendars, for as long as they have any.

Each round lists the consultant's calendars and syncs each one (an activity per
calendar, which fetches, expands and stores, and records a failure on the calendar
itself, so one broken calendar never stops the others). Then it sleeps until the
next periodic round, ``interval_seconds`` after the last one began, unless a "sync
now" signal (the API's ``POST …/sync``, or a calendar just linked) wakes it for the
calendars asked for. With no calendar left it ends; linking one starts it again
(signal-with-start). After ``rounds_per_run`` rounds it continues as new, carrying
what was asked for meanwhile, so its history stays small.

Its current details in the Temporal UI say when the next round is and what the last
one did.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from core.vocabulary import CalendarSyncOutcome
    from workflows.contracts.calendar_sync import (
        SYNC_NOW_SIGNAL,
        WORKFLOW_NAME,
        CalendarActivity,
        CalendarList,
        CalendarSyncInput,
        CalendarSyncSummary,
        ListCalendarsInput,
        SyncCalendarInput,
        SyncCalendarResult,
        SyncNow,
    )
    from workflows.presentation import minute

LIST_TIMEOUT = timedelta(seconds=30)
SYNC_TIMEOUT = timedelta(minutes=5)
"""A sync is bounded by the fetch timeout per request; this bounds a whole CalDAV
exchange of many requests, and a worker lost mid-sync."""
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name=WORKFLOW_NAME)
class CalendarSyncWorkflow:
    def __init__(self) -> None:
        self._asked: set[uuid.UUID] = set()
        self._asked_for_all = False
        self._summary = CalendarSyncSummary()

    @workflow.signal(name=SYNC_NOW_SIGNAL)
    def sync_now(self, request: SyncNow) -> None:
        if request.calendar_id is None:
            self._asked_for_all = True
        else:
            self._asked.add(request.calendar_id)

    @workflow.run  # noqa: RET503  (it ends by continuing as new, which raises)
    async def run(self, arg: CalendarSyncInput) -> CalendarSyncSummary:
        interval = timedelta(seconds=arg.interval_seconds)
        self._asked.update(arg.pending)
        self._asked_for_all = self._asked_for_all or arg.sync_everything
        next_round = workflow.now()
        while self._summary.rounds < arg.rounds_per_run:
            calendars = await self._list(arg.consultant_id)
            if not calendars:
                if self._asking():
                    # Asked for while the list was read (a calendar linked just now):
                    # look once more rather than end under it.
                    self._chosen((), everything=True)
                    continue
                workflow.set_current_details("**No linked calendar: finished**")
                return self._summary
            periodic = workflow.now() >= next_round
            chosen = self._chosen(calendars, everything=periodic)
            if periodic:
                next_round = workflow.now() + interval
            outcomes = [await self._sync(calendar_id) for calendar_id in chosen]
            self._summary.rounds += 1
            self._show(len(calendars), outcomes, next_round)
            await self._wait(next_round)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(  # raises: the run goes on as a new one
            replace(arg, pending=tuple(sorted(self._asked)), sync_everything=self._asked_for_all)
        )

    def _asking(self) -> bool:
        return self._asked_for_all or bool(self._asked)

    def _chosen(self, calendars: tuple[uuid.UUID, ...], *, everything: bool) -> list[uuid.UUID]:
        """Every calendar in a periodic round or when all were asked for, else those
        asked for; what was asked for counts as done."""
        if everything or self._asked_for_all:
            chosen = list(calendars)
        else:
            chosen = [calendar_id for calendar_id in calendars if calendar_id in self._asked]
        self._asked.clear()
        self._asked_for_all = False
        return chosen

    async def _wait(self, until: datetime) -> None:
        remaining = (until - workflow.now()).total_seconds()
        if remaining <= 0 or self._asking():
            return
        with contextlib.suppress(TimeoutError):  # then the periodic round is due
            await workflow.wait_condition(self._asking, timeout=remaining)

    async def _list(self, consultant_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
        listed: CalendarList = await workflow.execute_activity(
            CalendarActivity.LIST_CALENDARS,
            ListCalendarsInput(consultant_id=consultant_id),
            result_type=CalendarList,
            start_to_close_timeout=LIST_TIMEOUT,
            retry_policy=RETRY,
        )
        return listed.calendar_ids

    async def _sync(self, calendar_id: uuid.UUID) -> CalendarSyncOutcome:
        result: SyncCalendarResult = await workflow.execute_activity(
            CalendarActivity.SYNC_CALENDAR,
            SyncCalendarInput(calendar_id=calendar_id),
            result_type=SyncCalendarResult,
            start_to_close_timeout=SYNC_TIMEOUT,
            retry_policy=RETRY,
        )
        outcomes = self._summary.outcomes
        outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
        return result.outcome

    def _show(
        self, calendars: int, outcomes: list[CalendarSyncOutcome], next_round: datetime
    ) -> None:
        now = workflow.now()
        counts = ", ".join(
            f"{outcomes.count(outcome)} {outcome.value}"
            for outcome in CalendarSyncOutcome
            if outcome in outcomes
        )
        facts = [
            f"{calendars} linked calendar{'s' if calendars != 1 else ''}",
            f"last round {minute(now, reference=now)}: {counts or 'nothing to sync'}",
        ]
        if CalendarSyncOutcome.FAILED in outcomes:
            facts.append("failed calendars are stale: their last good busy time is kept")
        workflow.set_current_details(
            "\n".join(
                [
                    f"**Next sync {minute(next_round, reference=now)}**",
                    "",
                    *(f"- {f}" for f in facts),
                ]
            )
        )
