"""Bookings through the HTTP API: the data they need and the people who make them.

``seed_consultants`` writes a service type and consultants with free slots straight
into the database (as an operator's catalog work would have left them). A booking
is driven as its users would: the learner submits with a ``slot_id`` (as after an
availability search), the consultant watches their inbox (``GET
/v1/consultation-requests?status=pending_confirmation``, a database read) and
confirms at once, then the session is read until it carries its join URL.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import asyncpg
import httpx

from bench.catalog import copy_consultant_profiles
from bench.results import ScenarioResult
from bench.stack import asyncpg_dsn
from booking.tokens import Role

if TYPE_CHECKING:
    from bench.registry import BenchContext

REQUESTS = "/v1/consultation-requests"
SESSIONS = "/v1/sessions"
SERVICE_MINUTES = 30
SLOT_MINUTES = 60  # a booking carves its 30 minutes out of an hour, as in production
POLL_INTERVAL_S = 0.02
STEP_TIMEOUT_S = 60.0
CLIENT_KEEPALIVE_S = 2.0
"""How long the load's client keeps an idle connection: well under the API's own
keep-alive (uvicorn's 5 s). With both at 5 s, a request sent on a connection the
server was closing at that moment failed with a ReadError (seen once in a ``scale``
run of 1,040 bookings)."""
WORKFLOW_ID_PREFIX = "consultation-request-"

Headers = dict[str, str]


@dataclass(frozen=True)
class Slot:
    id: uuid.UUID
    consultant_id: uuid.UUID
    start: datetime


@dataclass(frozen=True)
class Seeded:
    service_type_id: uuid.UUID
    consultant_ids: list[uuid.UUID]
    slots: list[Slot]
    """Interleaved over the consultants: consecutive slots belong to different ones."""


async def seed_consultants(
    dsn: str,
    *,
    label: str,
    consultants: int,
    slots_per_consultant: int,
    slot_minutes: int = SLOT_MINUTES,
    confirmation_timeout: timedelta | None = None,
) -> Seeded:
    """A 30-minute service type anyone can give, and hour-long free slots two days on.

    ``confirmation_timeout`` is the service type's own (else the settings' default).
    """
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    ids = [uuid.uuid4() for _ in range(consultants)]
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            service_type_id = await connection.fetchval(
                "INSERT INTO consultation_service_types "
                "(name, default_duration_minutes, confirmation_timeout_seconds) "
                "VALUES ($1, $2, $3) RETURNING id",
                f"bench {label}",
                SERVICE_MINUTES,
                int(confirmation_timeout.total_seconds()) if confirmation_timeout else None,
            )
            await copy_consultant_profiles(
                connection,
                [
                    (consultant, f"bench {label} consultant {n}", [], True)
                    for n, consultant in enumerate(ids)
                ],
            )
            rows = await connection.fetch(
                "INSERT INTO consultant_availability_slots "
                "(consultant_user_id, start_time, end_time, status) "
                "SELECT c.id, $2::timestamptz + k * interval '2 hours', "
                "$2::timestamptz + k * interval '2 hours' + $3 * interval '1 minute', "
                "'available' "
                "FROM unnest($1::uuid[]) AS c(id), generate_series(0, $4 - 1) AS k "
                "RETURNING id, consultant_user_id, start_time",
                ids,
                first,
                slot_minutes,
                slots_per_consultant,
            )
        await connection.execute(
            "ANALYZE consultant_availability_slots, consultant_profiles, consultation_service_types"
        )
    finally:
        await connection.close()
    slots = [Slot(row["id"], row["consultant_user_id"], row["start_time"]) for row in rows]
    # Round-robin over the consultants: k-th slot of each, then the next k.
    slots.sort(key=lambda slot: (slot.start, str(slot.consultant_id)))
    return Seeded(service_type_id, ids, slots)


async def remove_seeded(dsn: str, seeded: Seeded) -> None:
    """Delete what :func:`seed_consultants` wrote and the bookings made on it."""
    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            ids = seeded.consultant_ids
            await connection.execute(
                "DELETE FROM scheduled_sessions WHERE consultant_user_id = ANY($1::uuid[])", ids
            )
            await connection.execute(
                "DELETE FROM consultation_requests WHERE consultation_service_type_id = $1",
                seeded.service_type_id,
            )
            await connection.execute(
                "DELETE FROM consultant_profiles WHERE consultant_user_id = ANY($1::uuid[])", ids
            )
            await connection.execute(
                "DELETE FROM consultation_service_types WHERE id = $1", seeded.service_type_id
            )
    finally:
        await connection.close()


class Tokens:
    """One token per user, minted once (signing is not what is measured)."""

    def __init__(self, mint: Callable[[Role, uuid.UUID], Headers]) -> None:
        self._mint = mint
        self._cache: dict[uuid.UUID, Headers] = {}

    def of(self, role: Role, user: uuid.UUID) -> Headers:
        headers = self._cache.get(user)
        if headers is None:
            headers = self._cache[user] = self._mint(role, user)
        return headers


@dataclass
class BookingTimes:
    """Nanosecond timings of one booking (``perf_counter_ns``)."""

    submit_ns: int = 0
    offered_ns: int = 0
    """Submit answered → the consultant sees it pending in their inbox."""
    confirm_call_ns: int = 0
    """POST confirm until its answer (the request is ``scheduled`` then)."""
    confirm_to_ready_ns: int = 0
    """POST confirm until the session has its join URL."""
    total_ns: int = 0
    request_id: str = ""
    session_id: str = ""


class BookingFailed(RuntimeError):
    pass


def _json(response: httpx.Response, expected: int, what: str) -> Any:
    if response.status_code != expected:
        raise BookingFailed(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


async def _poll(
    fetch: Callable[[], Any], done: Callable[[Any], bool], what: str, within: float
) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise BookingFailed(f"{what} did not happen within {within:.0f} s: {value!r:.300}")
        await asyncio.sleep(POLL_INTERVAL_S)


async def wait_offered(
    http: httpx.AsyncClient, consultant: Headers, request_id: str, within: float = STEP_TIMEOUT_S
) -> None:
    """The consultant's inbox (a database read) until the request is in it."""

    async def inbox() -> Any:
        response = await http.get(
            REQUESTS, params={"status": "pending_confirmation", "limit": 100}, headers=consultant
        )
        return _json(response, 200, "consultant inbox")

    await _poll(
        inbox,
        lambda page: any(item["id"] == request_id for item in page["items"]),
        f"request {request_id} offered",
        within,
    )


async def wait_join_url(
    http: httpx.AsyncClient, viewer: Headers, session_id: str, within: float = STEP_TIMEOUT_S
) -> None:
    async def read() -> Any:
        return _json(await http.get(f"{SESSIONS}/{session_id}", headers=viewer), 200, "session")

    await _poll(
        read,
        lambda s: s["status"] == "scheduled" and bool(s["join_url"]),
        f"join URL of session {session_id}",
        within,
    )


async def book(
    http: httpx.AsyncClient,
    tokens: Tokens,
    service_type_id: uuid.UUID,
    slot: Slot,
) -> BookingTimes:
    """One booking from submit to a scheduled session with its join URL."""
    times = BookingTimes()
    learner = tokens.of(Role.LEARNER, uuid.uuid4())
    consultant = tokens.of(Role.CONSULTANT, slot.consultant_id)
    body = {"service_type_id": str(service_type_id), "slot_id": str(slot.id)}
    began = time.perf_counter_ns()
    response = await http.post(
        REQUESTS, json=body, headers={**learner, "Idempotency-Key": str(uuid.uuid4())}
    )
    submitted = time.perf_counter_ns()
    times.submit_ns = submitted - began
    times.request_id = _json(response, 201, "submit")["id"]

    await wait_offered(http, consultant, times.request_id)
    confirming = time.perf_counter_ns()
    times.offered_ns = confirming - submitted
    response = await http.post(f"{REQUESTS}/{times.request_id}/confirm", headers=consultant)
    confirmed = _json(response, 200, "confirm")
    times.confirm_call_ns = time.perf_counter_ns() - confirming
    if confirmed["status"] != "scheduled" or not confirmed["session_id"]:
        raise BookingFailed(f"confirm answered {confirmed!r:.300}")
    times.session_id = confirmed["session_id"]
    await wait_join_url(http, learner, times.session_id)
    done = time.perf_counter_ns()
    times.confirm_to_ready_ns = done - confirming
    times.total_ns = done - began
    return times


@dataclass
class LoadOutcome:
    bookings: list[BookingTimes] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.bookings) / self.elapsed_s if self.elapsed_s else 0.0


async def closed_loop(
    http: httpx.AsyncClient,
    tokens: Tokens,
    service_type_id: uuid.UUID,
    slots: list[Slot],
    concurrency: int,
) -> LoadOutcome:
    """Each slot booked once, ``concurrency`` bookings in flight at any time."""
    outcome = LoadOutcome()
    pending = iter(slots)

    async def lane() -> None:
        for slot in pending:
            try:
                outcome.bookings.append(await book(http, tokens, service_type_id, slot))
            except (BookingFailed, httpx.HTTPError) as error:
                outcome.failures.append(f"{type(error).__name__}: {error}")

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(min(concurrency, len(slots)))))
    outcome.elapsed_s = time.perf_counter() - began
    return outcome


async def open_loop(
    http: httpx.AsyncClient,
    tokens: Tokens,
    service_type_id: uuid.UUID,
    slots: list[Slot],
    rate: float,
) -> LoadOutcome:
    """A booking begins every ``1 / rate`` seconds, however many are still running."""
    outcome = LoadOutcome()
    interval = 1.0 / rate

    async def one(slot: Slot) -> None:
        try:
            outcome.bookings.append(await book(http, tokens, service_type_id, slot))
        except (BookingFailed, httpx.HTTPError) as error:
            outcome.failures.append(f"{type(error).__name__}: {error}")

    began = time.perf_counter()
    tasks = []
    for index, slot in enumerate(slots):
        delay = began + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(slot)))
    await asyncio.gather(*tasks)
    outcome.elapsed_s = time.perf_counter() - began
    return outcome


class RoundRobin(httpx.AsyncBaseTransport):
    """Sends each request to the next of several API processes in turn, as a load
    balancer in front of them would: one booking's submit, inbox reads and confirm
    land on different processes, so nothing may hold only in the one that took the
    submit. ``sent`` counts the requests each origin got."""

    def __init__(self, origins: Sequence[str], inner: httpx.AsyncBaseTransport) -> None:
        if not origins:
            raise ValueError("round robin over no origins")
        self.origins = [httpx.URL(origin) for origin in origins]
        self.sent = [0] * len(self.origins)
        self._turn = itertools.cycle(range(len(self.origins)))
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = next(self._turn)
        origin = self.origins[index]
        self.sent[index] += 1
        request.url = request.url.copy_with(
            scheme=origin.scheme, host=origin.host, port=origin.port
        )
        request.headers["Host"] = origin.netloc.decode("ascii")
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def http_client(base_url: str | Sequence[str], connections: int) -> httpx.AsyncClient:
    """A client on the API; given several base URLs (API processes), it spreads the
    requests over them round robin (:class:`RoundRobin`), ``connections`` in all."""
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=CLIENT_KEEPALIVE_S,
    )
    timeout = httpx.Timeout(STEP_TIMEOUT_S)
    if isinstance(base_url, str):
        return httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits)
    urls = list(base_url)
    # One pool for every origin: the bound on connections is the same as for one API.
    transport = RoundRobin(urls, httpx.AsyncHTTPTransport(limits=limits))
    return httpx.AsyncClient(base_url=urls[0], timeout=timeout, transport=transport)


async def history_counts(
    client: Any, request_id: str, *, settle_s: float = 10.0
) -> tuple[int, int | None]:
    """(events once the booking rests, events up to the confirm update's completion).

    "Rests" is the history after the meeting was created: it ends with the
    workflow task that starts the wait for the session (no task scheduled or running).
    """
    handle = client.get_workflow_handle(WORKFLOW_ID_PREFIX + request_id)
    deadline = time.monotonic() + settle_s
    while True:
        history = await handle.fetch_history()
        events = list(history.events)
        last = events[-1].WhichOneof("attributes") if events else ""
        resting = last not in {
            "workflow_task_scheduled_event_attributes",
            "workflow_task_started_event_attributes",
            "activity_task_scheduled_event_attributes",
            "activity_task_started_event_attributes",
            "activity_task_completed_event_attributes",
        }
        if resting or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    completed_updates = [
        index
        for index, event in enumerate(events)
        if event.WhichOneof("attributes") == "workflow_execution_update_completed_event_attributes"
    ]
    # The first update is the submission (update-with-start), the last the confirm.
    at_scheduled = completed_updates[-1] + 1 if len(completed_updates) >= 2 else None
    return len(events), at_scheduled


_OVERLAPS = """
SELECT count(*) FROM scheduled_sessions a
JOIN scheduled_sessions b
  ON a.consultant_user_id = b.consultant_user_id AND a.id < b.id
 AND tstzrange(a.scheduled_start_time, a.scheduled_end_time)
     && tstzrange(b.scheduled_start_time, b.scheduled_end_time)
WHERE a.consultant_user_id = ANY($1::uuid[])
  AND a.status NOT LIKE 'cancel%' AND b.status NOT LIKE 'cancel%'
"""
_SLOT_OVERLAPS = """
SELECT count(*) FROM consultant_availability_slots a
JOIN consultant_availability_slots b
  ON a.consultant_user_id = b.consultant_user_id AND a.id < b.id
 AND tstzrange(a.start_time, a.end_time) && tstzrange(b.start_time, b.end_time)
WHERE a.consultant_user_id = ANY($1::uuid[])
"""


@dataclass(frozen=True)
class BookedFacts:
    sessions: int
    sessions_with_join_url: int
    session_overlaps: int
    slot_overlaps: int
    booked_slots: int


async def booked_facts(dsn: str, consultants: list[uuid.UUID]) -> BookedFacts:
    """What the database holds for these consultants: sessions and any overlap."""
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS n, count(meeting_platform_join_url) AS urls "
            "FROM scheduled_sessions WHERE consultant_user_id = ANY($1::uuid[]) "
            "AND status NOT LIKE 'cancel%'",
            consultants,
        )
        overlaps = await connection.fetchval(_OVERLAPS, consultants)
        slot_overlaps = await connection.fetchval(_SLOT_OVERLAPS, consultants)
        booked = await connection.fetchval(
            "SELECT count(*) FROM consultant_availability_slots "
            "WHERE consultant_user_id = ANY($1::uuid[]) AND status = 'booked'",
            consultants,
        )
    finally:
        await connection.close()
    assert row is not None
    return BookedFacts(row["n"], row["urls"], overlaps, slot_overlaps, booked)


ENV_WORKFLOW_TASK_POLLS = "BOOKING_BENCH_WORKFLOW_TASK_POLLS"


def service_worker_command() -> tuple[list[str], str]:
    """How to start the service's worker, and what it is, for the result's config.

    ``booking worker`` as deployed; with ``BOOKING_BENCH_WORKFLOW_TASK_POLLS=N`` the
    same worker with N workflow-task (and N activity-task) pollers instead of 5.
    """
    polls = os.environ.get(ENV_WORKFLOW_TASK_POLLS)
    if polls:
        command = ["-m", "bench.tuned_worker", "--workflow-task-polls", polls]
        return (
            [*command, "--activity-task-polls", polls],
            f"worker.py's worker with {polls} workflow- and activity-task pollers (default 5)",
        )
    return ["-m", "booking.cli", "worker"], "booking worker (worker.py as deployed), one process"


class Overlaps(Protocol):
    """A round's overlap counts (SQL), as the contention scenarios record them."""

    @property
    def session_overlaps(self) -> int: ...
    @property
    def slot_overlaps(self) -> int: ...


Outcome = TypeVar("Outcome", bound=Overlaps)


async def contention_rounds(
    ctx: BenchContext,
    name: str,
    play: Callable[[int], Awaitable[tuple[Outcome, Seeded]]],
    report: Callable[[int, Outcome], None],
    *,
    workers: int = 1,
) -> list[Outcome]:
    """The rounds of a contention scenario against the service's worker (``workers``
    processes of it on the one task queue): ``play`` one round (it seeds its own
    consultants), ``report`` it; afterwards the workers stop and, on a database not
    this run's own, the seeded rows go again."""
    worker_command, _ = service_worker_command()
    started = [
        ctx.stack.start_python(f"{name} worker" + (f" {n}" if n > 1 else ""), worker_command)
        for n in range(1, workers + 1)
    ]
    outcomes: list[Outcome] = []
    seeded_all: list[Seeded] = []
    try:
        for number_ in ctx.round_numbers():
            for worker in started:
                worker.ensure_alive()
            outcome, seeded = await play(number_)
            outcomes.append(outcome)
            seeded_all.append(seeded)
            report(number_, outcome)
    finally:
        for worker in reversed(started):
            ctx.stack.stop_child(worker)
        if not ctx.stack.owns_database:
            for seeded in seeded_all:
                await remove_seeded(asyncpg_dsn(ctx.stack.database_url), seeded)
    return outcomes


def check_no_overlaps(result: ScenarioResult, outcomes: Sequence[Overlaps]) -> None:
    result.check(
        "zero overlapping sessions or slots per consultant (SQL)",
        all(o.session_overlaps == 0 and o.slot_overlaps == 0 for o in outcomes),
        "; ".join(f"{o.session_overlaps} session / {o.slot_overlaps} slot pairs" for o in outcomes),
    )
