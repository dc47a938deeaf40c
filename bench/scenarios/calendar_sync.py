"""calendar_sync: one linked calendar of 5,000 events, synced as the worker syncs it.

A seeded ICS file (Europe/Berlin with its VTIMEZONE, events over the coming year:
a tenth weekly series of ten with an EXDATE, some all-day, some transparent or
cancelled) is served from an HTTP server on loopback with ETag and Last-Modified.
Each round runs ``CalendarActivities.sync`` twice on a consultant's calendar:

* a full sync (the stored validators and window cleared first): fetch through the
  outbound guard, parse, expand, merge, and replace the busy set in PostgreSQL;
* the same calendar again, unchanged: a conditional GET answered ``304``, the set kept.

Wall time and this process's CPU time (fetch, parse, expand and the client side of
the store; PostgreSQL's own work is in the wall time only) are reported, and the CPU
per event of the full sync.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from activities.calendars import CalendarActivities
from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult
from bench.stack import Component
from core.vocabulary import CalendarKind, CalendarSyncOutcome
from db.calendars import linked
from db.models import ConsultantCalendar, ConsultantProfile
from integrations.calendars.addresses import address_hint
from integrations.calendars.secrets import CalendarSecrets
from tests.support.loopback import LoopbackServer, read_request

ZONE = "Europe/Berlin"
VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""


@dataclass(frozen=True)
class CalendarParams:
    events: int

    @classmethod
    def for_run(cls, quick: bool) -> CalendarParams:
        return cls(events=500 if quick else 5000)


def calendar_file(events: int, start: datetime, rng: random.Random) -> bytes:
    """``events`` VEVENTs over the year after ``start``; every tenth a weekly series."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Booking bench//EN", VTIMEZONE]
    for number in range(events):
        day = start + timedelta(days=rng.randrange(0, 360))
        hour, minutes = rng.randrange(7, 19), rng.choice((0, 15, 30, 45))
        begin = day.replace(hour=hour, minute=minutes, second=0, microsecond=0, tzinfo=None)
        end = begin + timedelta(minutes=rng.choice((30, 45, 60, 90, 120)))
        event = [
            "BEGIN:VEVENT",
            f"UID:bench-{number}@example.test",
            "DTSTAMP:20261201T000000Z",
            f"SUMMARY:Event {number}",
        ]
        kind = number % 20
        if kind == 1:  # all day
            event += [
                f"DTSTART;VALUE=DATE:{begin:%Y%m%d}",
                f"DTEND;VALUE=DATE:{begin + timedelta(days=1):%Y%m%d}",
            ]
        else:
            event += [
                f"DTSTART;TZID={ZONE}:{begin:%Y%m%dT%H%M%S}",
                f"DTEND;TZID={ZONE}:{end:%Y%m%dT%H%M%S}",
            ]
        if kind in (0, 10):  # a weekly series of ten, one week left out
            event += [
                "RRULE:FREQ=WEEKLY;COUNT=10",
                f"EXDATE;TZID={ZONE}:{begin + timedelta(weeks=3):%Y%m%dT%H%M%S}",
            ]
        elif kind == 2:
            event.append("TRANSP:TRANSPARENT")
        elif kind == 3:
            event.append("STATUS:CANCELLED")
        lines += [*event, "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


class CalendarFile:
    """Serves one calendar with an ETag; ``If-None-Match`` of it gets a 304."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        self.base_url = ""
        self.not_modified = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        _, headers = await read_request(scope, receive)
        validators = [(b"etag", self.etag.encode())]
        if headers.get("if-none-match") == self.etag:
            self.not_modified += 1
            await send({"type": "http.response.start", "status": 304, "headers": validators})
            await send({"type": "http.response.body", "body": b""})
            return
        content = [(b"content-type", b"text/calendar"), *validators]
        await send({"type": "http.response.start", "status": 200, "headers": content})
        await send({"type": "http.response.body", "body": self.body})


@scenario(
    "calendar_sync",
    needs={Component.DATABASE},
    summary="sync a 5,000-event ICS calendar (full and 304), wall time and CPU per event",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = CalendarParams.for_run(ctx.quick)
    result = ScenarioResult("calendar_sync")
    now = datetime.now(UTC)
    body = calendar_file(params.events, now, ctx.rng("calendar"))
    served = CalendarFile(body)
    server = LoopbackServer(served)
    await server.start()
    settings = ctx.stack.settings().model_copy(
        update={
            "calendar_secret_key": SecretStr(secrets.token_urlsafe(32)),
            "calendar_allowed_targets": ["127.0.0.0/8"],
            "calendar_max_response_bytes": 64 * 1024 * 1024,
        }
    )
    engine = create_async_engine(ctx.stack.database_url, pool_size=2, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    activities = CalendarActivities(sessions, settings)
    consultant, calendar_id = uuid.uuid4(), uuid.uuid4()
    address = f"{served.base_url}/{ctx.run_id}/basic.ics"
    try:
        sealer = CalendarSecrets.from_settings(settings)
        async with sessions() as session, session.begin():
            session.add(ConsultantProfile(consultant_user_id=consultant, time_zone=ZONE))
            await session.flush()
            await linked.link(
                session,
                linked.NewCalendar(
                    calendar_id=calendar_id,
                    consultant_id=consultant,
                    kind=CalendarKind.ICS.value,
                    display_name="bench",
                    address_ciphertext=sealer.seal(
                        address, calendar_id=calendar_id, field="address"
                    ),
                    address_hint=address_hint(address),
                    username=None,
                    password_ciphertext=None,
                ),
            )
        full_ms, full_cpu_ms, per_event_ms, kept_ms, kept_cpu_ms, intervals = ([] for _ in range(6))
        for number in ctx.round_numbers():
            async with sessions() as session, session.begin():
                await session.execute(
                    update(ConsultantCalendar)
                    .where(ConsultantCalendar.id == calendar_id)
                    .values(etag=None, last_modified=None, expanded_until=None)
                )
            wall, cpu = time.perf_counter(), time.process_time()
            full = await activities.sync(calendar_id)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert full.outcome is CalendarSyncOutcome.UPDATED, full
            full_ms.append(wall * 1000)
            full_cpu_ms.append(cpu * 1000)
            per_event_ms.append(cpu * 1000 / params.events)
            intervals.append(float(full.busy_intervals))

            wall, cpu = time.perf_counter(), time.process_time()
            kept = await activities.sync(calendar_id)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert kept.outcome is CalendarSyncOutcome.UNCHANGED, kept
            kept_ms.append(wall * 1000)
            kept_cpu_ms.append(cpu * 1000)
            ctx.say(
                f"calendar_sync round {number}: full {full_ms[-1]:.0f} ms "
                f"({per_event_ms[-1]:.3f} ms CPU/event, {full.busy_intervals} intervals), "
                f"304 {kept_ms[-1]:.1f} ms"
            )
        result.config = {
            "events": params.events,
            "body_bytes": len(body),
            "horizon_days": settings.calendar_horizon.days,
            "not_modified_answers": served.not_modified,
        }
        result.figure("full.wall", "full sync, wall time", "ms", full_ms, better=Better.LOWER)
        result.figure("full.cpu", "full sync, CPU of this process", "ms", full_cpu_ms)
        result.figure(
            "full.cpu_per_event",
            "full sync, CPU per event (fetch, parse, expand, store)",
            "ms",
            per_event_ms,
            better=Better.LOWER,
        )
        result.figure("full.intervals", "busy intervals stored", "intervals", intervals)
        result.figure(
            "not_modified.wall", "304 sync, wall time", "ms", kept_ms, better=Better.LOWER
        )
        result.figure("not_modified.cpu", "304 sync, CPU of this process", "ms", kept_cpu_ms)
        result.notes.append(
            "CPU is this process's (the worker's share); PostgreSQL's insert work shows in "
            "the wall time only."
        )
        return result
    finally:
        async with sessions() as session, session.begin():
            await session.execute(
                delete(ConsultantProfile).where(ConsultantProfile.consultant_user_id == consultant)
            )
        await activities.aclose()
        await engine.dispose()
        await server.stop()
