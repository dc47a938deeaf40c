"""The ``calendar.*`` activities: list a consultant's calendars, sync one.

A sync reads the calendar (its secrets opened with the configured key), fetches it
with no transaction open, expands it in a thread (parsing a big calendar is CPU work
that must not stall the worker's event loop), then stores the busy set with the sync
state in one transaction (``db.calendars.busy_sets``). A calendar that cannot be
fetched or read is a result, not an error: the failure is recorded on the calendar
(stale since, the error) and the last good set stays. Only the database failing
raises, and is retried. Idempotent: the set is replaced, never appended to.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from temporalio import activity

from activities import SessionFactory, transaction
from core.local_time import zone_named
from core.settings import Settings
from core.vocabulary import CalendarKind, CalendarSyncOutcome
from db.calendars import busy_sets, linked
from db.calendars.busy_sets import Interval, SyncState, TooManyBusyIntervals
from db.models import ConsultantCalendar
from integrations.calendars.caldav_fetch import CaldavChanges, CaldavState, fetch_caldav
from integrations.calendars.caldav_session import Lookup
from integrations.calendars.expansion import (
    Busy,
    UnreadableCalendar,
    Window,
    busy_by_uid,
    merged,
    parse,
    source_key_of,
)
from integrations.calendars.failures import CalendarFetchFailed
from integrations.calendars.ics_fetch import Validators, fetch_ics, ics_client
from integrations.calendars.secrets import CalendarSecrets, UnreadableSecret
from integrations.outbound.targets import calendar_target_policy
from integrations.outbound.transport import Resolver
from integrations.outbound.transport import resolve as system_resolve
from workflows.contracts.calendar_sync import (
    CalendarActivity,
    CalendarList,
    ListCalendarsInput,
    SyncCalendarInput,
    SyncCalendarResult,
)

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

REFRESH_SLACK = timedelta(days=1)
"""An unchanged calendar is expanded afresh once its stored window ends more than
this short of the current one, so busy time is never missing at the far end."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Stored:
    outcome: CalendarSyncOutcome
    count: int


class CalendarActivities:
    """``resolver`` (ICS) and ``lookup`` (CalDAV) replace the system resolver, and
    ``clock`` the time, in tests."""

    def __init__(
        self,
        session_factory: SessionFactory,
        settings: Settings,
        *,
        resolver: Resolver = system_resolve,
        lookup: Lookup = socket.getaddrinfo,
        clock: Clock = _now,
    ) -> None:
        self._sessions = session_factory
        self._settings = settings
        self._policy = calendar_target_policy(settings)
        self._resolver = resolver
        self._lookup = lookup
        self._clock = clock
        self._secrets = (
            CalendarSecrets.from_settings(settings) if settings.calendar_secret_key else None
        )
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        """One client (and TLS context) for every ICS fetch of this worker."""
        if self._http is None:
            self._http = ics_client(
                self._policy, timeout=self._settings.calendar_fetch_timeout, resolver=self._resolver
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    @activity.defn(name=CalendarActivity.LIST_CALENDARS)
    async def list_calendars(self, arg: ListCalendarsInput) -> CalendarList:
        async with transaction(self._sessions) as session:
            ids = await linked.calendar_ids_of(session, arg.consultant_id)
        return CalendarList(calendar_ids=tuple(ids))

    @activity.defn(name=CalendarActivity.SYNC_CALENDAR)
    async def sync_calendar(self, arg: SyncCalendarInput) -> SyncCalendarResult:
        return await self.sync(arg.calendar_id)

    async def sync(self, calendar_id: uuid.UUID) -> SyncCalendarResult:
        """Fetch, expand and store one calendar; a failure is recorded, not raised."""
        now = self._clock()
        async with transaction(self._sessions) as session:
            found = await linked.calendar_to_sync(session, calendar_id)
        if found is None:
            return SyncCalendarResult(calendar_id=calendar_id, outcome=CalendarSyncOutcome.GONE)
        calendar = found.calendar
        window = Window(
            start=now,
            end=now + self._settings.calendar_horizon,
            zone=zone_named(found.time_zone) or ZoneInfo("UTC"),
        )
        refresh = calendar.expanded_until is None or (
            calendar.expanded_until < window.end - REFRESH_SLACK
        )
        try:
            stored = await self._fetch_and_store(calendar, window, refresh=refresh, now=now)
        except (
            CalendarFetchFailed,
            UnreadableCalendar,
            UnreadableSecret,
            TooManyBusyIntervals,
        ) as failure:
            message = _failure_message(failure, self._settings.calendar_max_busy_intervals)
            async with transaction(self._sessions) as session:
                still_there = await busy_sets.record_failure(
                    session, calendar_id, error=message, at=now
                )
            logger.info("calendar %s failed to sync: %s", calendar_id, message)
            outcome = CalendarSyncOutcome.FAILED if still_there else CalendarSyncOutcome.GONE
            return SyncCalendarResult(
                calendar_id=calendar_id,
                outcome=outcome,
                busy_intervals=calendar.busy_interval_count,
            )
        return SyncCalendarResult(
            calendar_id=calendar_id, outcome=stored.outcome, busy_intervals=stored.count
        )

    def _open(self, calendar: ConsultantCalendar) -> tuple[str, str | None]:
        if self._secrets is None:
            raise UnreadableSecret("BOOKING_CALENDAR_SECRET_KEY is not set on this worker")
        address = self._secrets.open(
            calendar.address_ciphertext, calendar_id=calendar.id, field="address"
        )
        password = None
        if calendar.password_ciphertext is not None:
            password = self._secrets.open(
                calendar.password_ciphertext, calendar_id=calendar.id, field="password"
            )
        return address, password

    async def _fetch_and_store(
        self, calendar: ConsultantCalendar, window: Window, *, refresh: bool, now: datetime
    ) -> _Stored:
        address, password = self._open(calendar)
        if calendar.kind == CalendarKind.ICS.value:
            return await self._sync_ics(calendar, address, password, window, refresh, now)
        return await self._sync_caldav(calendar, address, password, window, refresh, now)

    async def _sync_ics(
        self,
        calendar: ConsultantCalendar,
        address: str,
        password: str | None,
        window: Window,
        refresh: bool,
        now: datetime,
    ) -> _Stored:
        settings = self._settings
        validators = Validators() if refresh else Validators(calendar.etag, calendar.last_modified)
        answer = await fetch_ics(
            self._client(),
            address,
            validators,
            max_bytes=settings.calendar_max_response_bytes,
            time_limit=settings.calendar_fetch_timeout,
            username=calendar.username,
            password=password,
        )
        state = SyncState(
            etag=answer.validators.etag, last_modified=answer.validators.last_modified
        )
        if answer.body is None:
            return await self._keep(calendar.id, state, now)
        busy = await asyncio.to_thread(_expand, {"": answer.body}, window, by_uid=True)
        return await self._replace_all(calendar.id, busy, state, window, now)

    async def _sync_caldav(
        self,
        calendar: ConsultantCalendar,
        address: str,
        password: str | None,
        window: Window,
        refresh: bool,
        now: datetime,
    ) -> _Stored:
        settings = self._settings
        previous = (
            CaldavState()
            if refresh
            else CaldavState(
                sync_token=calendar.sync_token,
                ctag=calendar.ctag,
                synced_before=calendar.last_success_at is not None,
            )
        )
        changes: CaldavChanges = await asyncio.to_thread(
            fetch_caldav,
            address,
            username=calendar.username,
            password=password,
            state=previous,
            policy=self._policy,
            max_bytes=settings.calendar_max_response_bytes,
            timeout=settings.calendar_fetch_timeout,
            lookup=self._lookup,
        )
        state = SyncState(sync_token=changes.sync_token, ctag=changes.ctag)
        if changes.unchanged:
            return await self._keep(calendar.id, state, now)
        busy = await asyncio.to_thread(_expand, changes.objects, window, by_uid=False)
        if changes.full:
            return await self._replace_all(calendar.id, busy, state, window, now)
        async with transaction(self._sessions) as session:
            count = await busy_sets.replace_sources(
                session,
                calendar.id,
                busy,
                changes.deleted,
                state=state,
                at=now,
                max_intervals=settings.calendar_max_busy_intervals,
            )
        return _stored(CalendarSyncOutcome.UPDATED, count)

    async def _keep(self, calendar_id: uuid.UUID, state: SyncState, now: datetime) -> _Stored:
        async with transaction(self._sessions) as session:
            count = await busy_sets.keep_set(session, calendar_id, state=state, at=now)
        return _stored(CalendarSyncOutcome.UNCHANGED, count)

    async def _replace_all(
        self,
        calendar_id: uuid.UUID,
        busy: Mapping[str, list[Interval]],
        state: SyncState,
        window: Window,
        now: datetime,
    ) -> _Stored:
        async with transaction(self._sessions) as session:
            count = await busy_sets.replace_all(
                session,
                calendar_id,
                busy,
                state=state,
                expanded_until=window.end,
                at=now,
                max_intervals=self._settings.calendar_max_busy_intervals,
            )
        return _stored(CalendarSyncOutcome.UPDATED, count)


def _stored(outcome: CalendarSyncOutcome, count: int | None) -> _Stored:
    if count is None:
        return _Stored(CalendarSyncOutcome.GONE, 0)
    return _Stored(outcome, count)


def _expand(
    sources: Mapping[str, bytes | str], window: Window, *, by_uid: bool
) -> dict[str, list[Interval]]:
    """Busy intervals by source key: each event UID of an ICS file (``by_uid``), or
    each CalDAV object (all its components together)."""
    busy: dict[str, list[Interval]] = {}
    for key, data in sources.items():
        per_uid = busy_by_uid(parse(data), window)
        if by_uid:
            for uid, intervals in per_uid.items():
                busy[source_key_of(uid)] = _intervals(intervals)
        else:
            busy[key] = _intervals(merged(i for group in per_uid.values() for i in group))
    return busy


def _intervals(found: list[Busy]) -> list[Interval]:
    return [Interval(start=b.start, end=b.end) for b in found]


def _failure_message(failure: Exception, max_intervals: int) -> str:
    if isinstance(failure, CalendarFetchFailed):
        return failure.message
    if isinstance(failure, TooManyBusyIntervals):
        return (
            f"the calendar has more than {max_intervals} busy times in the horizon "
            "(BOOKING_CALENDAR_MAX_BUSY_INTERVALS)"
        )
    if isinstance(failure, UnreadableCalendar):
        return f"the calendar cannot be read: {failure}"
    return str(failure)
