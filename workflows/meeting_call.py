"""The one meeting-platform call a booked session may have in flight, beside its loop.

The platform can be down for hours, and the session's clock (reminders, the start)
must not wait for it: the call runs as a task of its own, retried by the server
until its deadline, and ``ConsultationWorkflow._run_session`` (still the only
code that changes the request) takes its outcome when it ends. A task decides
nothing: it reports what the platform did.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.exceptions import ActivityError, ApplicationError

from workflows import calls
from workflows.contracts.activity_io import MeetingInput
from workflows.state import ACTIVITY_FAILURES, business_error


@dataclass(frozen=True, kw_only=True)
class MeetingOutcome:
    """How a create or a move ended. ``start`` is the session start the call was
    made for: the session may have moved again while it ran."""

    creating: bool
    start: datetime
    succeeded: bool
    # The platform refused for good (retrying the same call cannot help); a call
    # that failed without being refused ran out of time.
    refused: bool = False
    reports_attendance: bool = False


class MeetingCall:
    def __init__(self) -> None:
        self._task: asyncio.Task[MeetingOutcome] | None = None

    @property
    def active(self) -> bool:
        """A call was started and its outcome not taken yet."""
        return self._task is not None

    @property
    def finished(self) -> bool:
        """Its outcome is there to take."""
        return self._task is not None and self._task.done()

    def create(self, arg: MeetingInput) -> None:
        self._begin(_create(arg))

    def move(self, arg: MeetingInput) -> None:
        self._begin(_move(arg))

    def take_outcome(self) -> MeetingOutcome:
        assert self._task is not None, "no meeting call"
        outcome = self._task.result()
        self._task = None
        return outcome

    async def stop(self) -> bool:
        """Abandon the call in flight; True if one was cut short, so the platform may
        have made a meeting nobody stored or will use."""
        task, self._task = self._task, None
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return True

    def _begin(self, call: Coroutine[Any, Any, MeetingOutcome]) -> None:
        assert self._task is None, "one meeting call at a time"
        self._task = asyncio.create_task(call)


async def _create(arg: MeetingInput) -> MeetingOutcome:
    try:
        created = await calls.create_meeting_until(arg)
    except ACTIVITY_FAILURES as err:
        return MeetingOutcome(
            creating=True, start=arg.start, succeeded=False, refused=_refused(err)
        )
    return MeetingOutcome(
        creating=True,
        start=arg.start,
        succeeded=True,
        reports_attendance=created.reports_attendance,
    )


async def _move(arg: MeetingInput) -> MeetingOutcome:
    try:
        await calls.reschedule_meeting_until(arg)
    except ACTIVITY_FAILURES as err:
        return MeetingOutcome(
            creating=False, start=arg.start, succeeded=False, refused=_refused(err)
        )
    return MeetingOutcome(creating=False, start=arg.start, succeeded=True)


def _refused(err: ActivityError | ApplicationError) -> bool:
    # Running out of time ends the call with a timeout, or with the last retryable
    # error when the server sees the next retry would start past the deadline.
    cause = business_error(err)
    return cause is not None and cause.non_retryable
