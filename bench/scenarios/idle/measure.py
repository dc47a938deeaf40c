"""What the idle scenario measures (the steps are in the package's docstring).

The reference mix of API reads and how it is timed, the parking of requests with the
worker's memory sampled meanwhile, and what is read after it: cold reads, the
requests' statuses in the database and in Temporal's visibility. ``measure`` runs
them in order (``take_measurements``) into a ``Measured``, which is all the report is
made from.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
from temporalio.client import Client
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError, RPCStatusCode

from api import consultation_workflow
from api.consultation_workflow import RequestClosedError
from api.errors import ProblemError
from bench.booking_load import (
    REQUESTS,
    SERVICE_MINUTES,
    SLOT_MINUTES,
    BookingFailed,
    Headers,
    Seeded,
    Slot,
    Tokens,
    wait_offered,
)
from bench.cpu import core_shares, cpu_seconds
from bench.memory import rss_mb
from bench.registry import BenchContext
from bench.scenarios.search import SEARCH_PATH, time_get
from bench.stack import ChildProcess, asyncpg_dsn
from bench.stats import latencies_ms
from booking.tokens import Role
from core.settings import Settings
from workflows.consultation import ConsultationWorkflow
from workflows.contracts.names import workflow_id_for
from workflows.contracts.workflow_input import ConsultationInput, LifecycleTimings

TARGET_PARKED = 10_000
# Longer than any run: the consultant's deadline (and the reminder before it) stays ahead.
CONFIRMATION_TIMEOUT = timedelta(days=7)
SPARE_SLOTS = 2  # per consultant beyond those parked on: the search always fills its page
SEARCH_WINDOW = timedelta(days=2)
SETTLE_S = 5.0  # after the last request is parked, before the worker's memory is read
PARK_TAIL_TIMEOUT_S = 120.0  # submitted but not yet pending confirmation: how long to wait
TAIL_POLL_S = 0.5
PROGRESS_REPORT_S = 30.0
VISIBILITY_TIMEOUT_S = 30.0
TERMINATE_IN_FLIGHT = 100
PENDING = "pending_confirmation"


PARK_BUDGET_VARIABLE = "BOOKING_BENCH_IDLE_PARK_BUDGET_S"
DEFAULT_PARK_BUDGET_S = 270.0


@dataclass(frozen=True)
class IdleParams:
    parked: int
    park_budget_s: float
    """Parking stops here even if short of ``parked`` (see the notes)."""
    in_flight: int
    consultants: int
    probes: int
    calls_per_kind: int
    """Per round, of each kind of reference call."""
    cold_reads: int
    sample_every_s: float

    @classmethod
    def for_run(cls, quick: bool) -> IdleParams:
        if quick:
            return cls(100, 60.0, 20, 20, 10, 5, 5, 1.0)
        # 270 s of parking keeps the whole scenario near 6 minutes: make bench has 15 for
        # every scenario, and the others take about 6. Run on its own, it may take longer
        # (PARK_BUDGET_VARIABLE) and park all 10,000.
        budget = float(os.environ.get(PARK_BUDGET_VARIABLE, DEFAULT_PARK_BUDGET_S))
        if budget <= 0:
            raise ValueError(f"{PARK_BUDGET_VARIABLE} must be a positive number of seconds")
        return cls(TARGET_PARKED, budget, 64, 500, 50, 40, 50, 5.0)

    @property
    def slots_per_consultant(self) -> int:
        return -(-self.parked // self.consultants) + SPARE_SLOTS


# -- the reference mix -----------------------------------------------------------------

KINDS = {
    "request": "a request's detail (with its workflow's live state)",
    "inbox": "a consultant's inbox (pending confirmation)",
    "own_requests": "a learner's own requests",
    "operator_list": "an operator's page of pending confirmations",
    "search": "availability search (2-day window)",
    "service_type": "a service type (control: nothing parked touches it)",
    "live_query": "the request's workflow queried straight through Temporal (no HTTP; "
    "not part of the API mix)",
}
CONTROL = "service_type"
LIVE_QUERY = "live_query"
API_KINDS = [kind for kind in KINDS if kind != LIVE_QUERY]


@dataclass(frozen=True)
class Probe:
    """A request submitted through the API, pending its own consultant's confirmation."""

    request_id: str
    learner: Headers
    consultant: Headers


@dataclass(frozen=True)
class Call:
    kind: str
    path: str
    headers: Headers
    params: dict[str, str] | None = None


@dataclass(frozen=True)
class LiveQuery:
    """The ``details`` query a request's detail asks its workflow, without the API around
    it: tells whether a change of that call is the workflow's part or the API's."""

    request_id: str
    kind: str = LIVE_QUERY


Step = Call | LiveQuery


def reference_mix(
    probes: list[Probe], operators: list[Headers], seeded: Seeded, calls_per_kind: int
) -> list[Step]:
    """The same calls on the same objects before and after parking, kinds interleaved.

    The operator's page is as long as there are probes, so it is full on both sides
    (the probes before parking, the newest parked requests after).
    """
    start = min(slot.start for slot in seeded.slots)
    search = {
        "service_type_id": str(seeded.service_type_id),
        "from": start.isoformat(),
        "to": (start + SEARCH_WINDOW).isoformat(),
    }
    pending_page = {"status": PENDING, "limit": str(len(probes))}
    calls: list[Step] = []
    for index in range(calls_per_kind):
        probe = probes[index % len(probes)]
        calls += [
            Call("request", f"{REQUESTS}/{probe.request_id}", probe.learner),
            LiveQuery(probe.request_id),
            Call("inbox", REQUESTS, probe.consultant, {"status": PENDING}),
            Call("own_requests", REQUESTS, probe.learner),
            Call("operator_list", REQUESTS, operators[index % len(operators)], pending_page),
            Call("search", SEARCH_PATH, probe.learner, search),
            Call(CONTROL, f"/v1/service-types/{seeded.service_type_id}", probe.learner),
        ]
    return calls


Samples = dict[str, list[int]]
"""Nanoseconds per call, by kind."""


async def time_step(http: httpx.AsyncClient, client: Client, step: Step) -> int:
    if isinstance(step, Call):
        elapsed, _ = await time_get(http, step.path, step.headers, step.params)
        return elapsed
    handle = consultation_workflow.handle_for(client, uuid.UUID(step.request_id))
    began = time.perf_counter_ns()
    await handle.query(ConsultationWorkflow.details)
    return time.perf_counter_ns() - began


async def time_calls(http: httpx.AsyncClient, client: Client, calls: list[Step]) -> Samples:
    samples: Samples = defaultdict(list)
    for step in calls:
        samples[step.kind].append(await time_step(http, client, step))
    return samples


async def measure_rounds(
    ctx: BenchContext, http: httpx.AsyncClient, client: Client, calls: list[Step], side: str
) -> list[Samples]:
    """An untimed warm-up pass (connections, caches, the probes' workflows back in the
    worker's cache), then one timed pass per round."""
    await time_calls(http, client, calls)
    # The client's own garbage collector must not pause inside a timed request.
    gc.collect()
    gc.freeze()
    rounds = []
    try:
        for number_ in ctx.round_numbers():
            samples = await time_calls(http, client, calls)
            rounds.append(samples)
            mix = latencies_ms(pooled_api_calls(samples))
            ctx.say(
                f"idle: {side}, round {number_}: {mix.count} API calls, p50 {mix.p50:.2f} ms, "
                f"p99 {mix.p99:.2f} ms"
            )
    finally:
        gc.unfreeze()
    return rounds


def pooled_api_calls(samples: Samples) -> list[int]:
    """The API calls of a round together (the direct query is not one)."""
    return [elapsed for kind in API_KINDS for elapsed in samples[kind]]


async def submit_probes(http: httpx.AsyncClient, tokens: Tokens, seeded: Seeded) -> list[Probe]:
    """One request per probe consultant through the API, each until it is offered."""

    async def submit(slot: Slot) -> Probe:
        learner = tokens.of(Role.LEARNER, uuid.uuid4())
        consultant = tokens.of(Role.CONSULTANT, slot.consultant_id)
        body = {"service_type_id": str(seeded.service_type_id), "slot_id": str(slot.id)}
        response = await http.post(
            REQUESTS, json=body, headers={**learner, "Idempotency-Key": str(uuid.uuid4())}
        )
        if response.status_code != httpx.codes.CREATED:
            raise BookingFailed(f"probe submit: HTTP {response.status_code}: {response.text:.300}")
        request_id: str = response.json()["id"]
        await wait_offered(http, consultant, request_id)
        return Probe(request_id, learner, consultant)

    return list(await asyncio.gather(*(submit(slot) for slot in seeded.slots)))


# -- parking -------------------------------------------------------------------------


@dataclass(frozen=True)
class Parked:
    request_id: uuid.UUID
    requester_id: uuid.UUID


@dataclass(frozen=True)
class ProgressSample:
    seconds: float
    parked: int
    """``pending_confirmation`` rows of the parking service type at that moment."""
    worker_rss_mb: float | None


@dataclass
class ParkingOutcome:
    started: list[uuid.UUID] = field(default_factory=list)
    """Every request a submit was sent for (answered or not): what cleanup terminates."""
    submitted: list[Parked] = field(default_factory=list)
    """The submits answered: stored, on their way to pending confirmation."""
    failures: list[str] = field(default_factory=list)
    progress: list[ProgressSample] = field(default_factory=list)
    budget_ended: bool = False
    elapsed_s: float = 0.0
    """First submit until every answered submit is pending confirmation."""
    cpu_core_shares: dict[str, float] = field(default_factory=dict)

    @property
    def parked(self) -> int:
        return self.progress[-1].parked if self.progress else 0

    @property
    def rate(self) -> float:
        return self.parked / self.elapsed_s if self.elapsed_s else 0.0


def consultation_input(
    seeded: Seeded, slot: Slot, timings: LifecycleTimings, requester_id: uuid.UUID
) -> ConsultationInput:
    """What the API starts for a learner's submission of this slot (no details, no key):
    the window is the slot (``api.submission_checks.slot_window``)."""
    return ConsultationInput(
        request_id=uuid.uuid4(),
        requester_id=requester_id,
        service_type_id=seeded.service_type_id,
        duration_minutes=SERVICE_MINUTES,
        window_start=slot.start,
        window_end=slot.start + timedelta(minutes=SLOT_MINUTES),
        timings=timings,
        requested_slot_id=slot.id,
    )


async def submit_until(
    client: Client,
    settings: Settings,
    seeded: Seeded,
    slots: list[Slot],
    params: IdleParams,
    outcome: ParkingOutcome,
) -> None:
    """``params.in_flight`` submits at a time, one per slot, until the budget is spent."""
    timings = LifecycleTimings.from_settings(
        settings, confirmation_timeout_override=CONFIRMATION_TIMEOUT
    )
    deadline = time.monotonic() + params.park_budget_s
    pending = iter(slots)

    async def lane() -> None:
        for slot in pending:
            if time.monotonic() > deadline:
                outcome.budget_ended = True
                return
            request = consultation_input(seeded, slot, timings, uuid.uuid4())
            outcome.started.append(request.request_id)
            try:
                await consultation_workflow.submit(
                    client, request, task_queue=settings.temporal_task_queue
                )
            except (ProblemError, RequestClosedError, TemporalError) as error:
                outcome.failures.append(f"{type(error).__name__}: {error}")
                continue
            outcome.submitted.append(Parked(request.request_id, request.requester_id))

    # A lane that fails unexpectedly stops the others (and the scenario).
    async with asyncio.TaskGroup() as lanes:
        for _ in range(min(params.in_flight, len(slots))):
            lanes.create_task(lane())


async def park(
    ctx: BenchContext,
    client: Client,
    seeded: Seeded,
    params: IdleParams,
    worker: ChildProcess,
    count_pending: Callable[[], Awaitable[int]],
    outcome: ParkingOutcome,
) -> None:
    """Submit, and sample the parked count and the worker's memory meanwhile, until every
    answered submit is pending confirmation (an answered submit is only stored: the
    workflow goes on to find and hold the slot and offer it). ``outcome`` is filled as
    it goes, so that cleanup finds what was started even if parking fails."""
    pids = ctx.stack.process_ids()
    cpu_before = cpu_seconds(pids)
    began = time.perf_counter()
    submitting = asyncio.ensure_future(
        submit_until(
            client, ctx.stack.settings(), seeded, seeded.slots[: params.parked], params, outcome
        )
    )
    tail_deadline: float | None = None
    next_report = PROGRESS_REPORT_S
    while True:
        if submitting.done():
            await asyncio.sleep(TAIL_POLL_S)
        else:
            await asyncio.wait({submitting}, timeout=params.sample_every_s)
        worker.ensure_alive()
        seconds = time.perf_counter() - began
        sample = ProgressSample(seconds, await count_pending(), rss_mb(worker.pid))
        outcome.progress.append(sample)
        if seconds >= next_report:
            ctx.say(f"idle: {sample.parked:,} parked after {seconds:.0f} s")
            next_report += PROGRESS_REPORT_S
        if not submitting.done():
            continue
        submitting.result()  # a lane that crashed ends the scenario here
        if sample.parked >= len(outcome.submitted):
            break
        tail_deadline = tail_deadline or time.monotonic() + PARK_TAIL_TIMEOUT_S
        if time.monotonic() > tail_deadline:
            break
    outcome.elapsed_s = outcome.progress[-1].seconds
    outcome.cpu_core_shares = core_shares(cpu_before, cpu_seconds(pids), outcome.elapsed_s)


def worker_cache_size(settings: Settings) -> int:
    """How many workflows the service's worker keeps in its cache (its setting, read
    from the same environment the worker process gets)."""
    return settings.worker_max_cached_workflows


async def settled_rss_mb(worker: ChildProcess) -> float:
    await asyncio.sleep(SETTLE_S)
    worker.ensure_alive()
    value = rss_mb(worker.pid)
    if value is None:
        raise RuntimeError(f"cannot read the memory of process {worker.pid} (/proc)")
    return value


# -- after the measurement -------------------------------------------------------------


async def cold_reads(
    http: httpx.AsyncClient, tokens: Tokens, parked: list[Parked]
) -> tuple[list[int], int]:
    """Detail reads of requests parked long ago, one at a time: (timings, how many came
    with the workflow's live state rather than the stored row alone)."""
    timings, live = [], 0
    for request in parked:
        learner = tokens.of(Role.LEARNER, request.requester_id)
        elapsed, response = await time_get(http, f"{REQUESTS}/{request.request_id}", learner)
        timings.append(elapsed)
        live += response.json().get("live") is not None
    return timings, live


async def statuses(dsn: str, service_type_ids: list[uuid.UUID]) -> Counter[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT status, count(*) AS n FROM consultation_requests "
            "WHERE consultation_service_type_id = ANY($1::uuid[]) GROUP BY status",
            service_type_ids,
        )
    finally:
        await connection.close()
    return Counter({row["status"]: row["n"] for row in rows})


async def visible_counts(
    client: Client, service_type_id: uuid.UUID, expected: int
) -> tuple[int, int]:
    """(running and pending confirmation, not running) in Temporal's visibility, which
    lags a little behind: asked again until it shows ``expected`` or a timeout."""
    scope = f"WorkflowType = 'ConsultationWorkflow' AND ServiceTypeId = '{service_type_id}'"
    deadline = time.monotonic() + VISIBILITY_TIMEOUT_S
    while True:
        running = await client.count_workflows(
            f"{scope} AND ExecutionStatus = 'Running' AND BookingStatus = '{PENDING}'"
        )
        closed = await client.count_workflows(f"{scope} AND ExecutionStatus != 'Running'")
        if (running.count == expected and closed.count == 0) or time.monotonic() > deadline:
            return running.count, closed.count
        await asyncio.sleep(1.0)


async def terminate(client: Client, request_ids: Iterator[str]) -> int:
    """End the parked workflows (a reused stack must not keep them); how many were."""
    ended = 0

    async def lane() -> None:
        nonlocal ended
        for request_id in request_ids:
            handle = client.get_workflow_handle(workflow_id_for(uuid.UUID(request_id)))
            try:
                await handle.terminate(reason="benchmark idle scenario: cleanup")
            except RPCError as error:
                if error.status is not RPCStatusCode.NOT_FOUND:
                    raise
                continue
            ended += 1

    await asyncio.gather(*(lane() for _ in range(TERMINATE_IN_FLIGHT)))
    return ended


# -- the measurement --------------------------------------------------------------


@dataclass
class Measured:
    """Everything the report is made from."""

    without: list[Samples] = field(default_factory=list)
    with_parked: list[Samples] = field(default_factory=list)
    parking: ParkingOutcome = field(default_factory=ParkingOutcome)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    temporal_rss_mb: tuple[float | None, float | None] = (None, None)
    cold: list[int] = field(default_factory=list)
    cold_live: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    visible: tuple[int, int] = (0, 0)
    phases_s: dict[str, float] = field(default_factory=dict)
    worker_cache: int = 0


async def take_measurements(
    ctx: BenchContext,
    params: IdleParams,
    seeded: Seeded,
    probe_seed: Seeded,
    worker: ChildProcess,
    client: Client,
    http: httpx.AsyncClient,
    measured: Measured,
    probes: list[Probe],
) -> None:
    """Probes, the rounds without, parking, the rounds with, cold reads, then the facts
    the checks judge. ``measured`` and ``probes`` are filled as it goes, so that cleanup
    finds what was started even if a step fails."""
    dsn = asyncpg_dsn(ctx.stack.database_url)
    tokens = Tokens(lambda role, user: ctx.stack.auth_headers(role, user))
    clock = time.monotonic()
    ctx.say(f"idle: {params.probes} probe requests through the API")
    probes += await submit_probes(http, tokens, probe_seed)
    operators = [tokens.of(Role.OPERATOR, uuid.uuid4()) for _ in probes]
    calls = reference_mix(probes, operators, seeded, params.calls_per_kind)
    measured.without = await measure_rounds(ctx, http, client, calls, "without parked requests")
    measured.rss_before_mb = await settled_rss_mb(worker)
    temporal_pid = ctx.stack.process_ids().get("temporal")
    temporal_before = rss_mb(temporal_pid) if temporal_pid else None
    measured.phases_s["probes_and_rounds_without"] = time.monotonic() - clock

    clock = time.monotonic()
    ctx.say(
        f"idle: parking up to {params.parked:,} requests ({params.in_flight} in flight, "
        f"at most {params.park_budget_s:.0f} s); worker RSS {measured.rss_before_mb:.0f} MB"
    )
    connection = await asyncpg.connect(dsn)
    try:
        await park(
            ctx,
            client,
            seeded,
            params,
            worker,
            lambda: _count_pending(connection, seeded.service_type_id),
            measured.parking,
        )
    finally:
        await connection.close()
    parking = measured.parking
    measured.rss_after_mb = await settled_rss_mb(worker)
    temporal_after = rss_mb(temporal_pid) if temporal_pid else None
    measured.temporal_rss_mb = (temporal_before, temporal_after)
    measured.phases_s["parking"] = time.monotonic() - clock
    ctx.say(
        f"idle: {parking.parked:,} parked in {parking.elapsed_s:.0f} s ({parking.rate:.1f}/s"
        f"{', budget spent' if parking.budget_ended else ''}); worker RSS "
        f"{measured.rss_after_mb:.0f} MB (+{measured.rss_after_mb - measured.rss_before_mb:.0f})"
    )

    clock = time.monotonic()
    measured.with_parked = await measure_rounds(ctx, http, client, calls, "with them")
    oldest = parking.submitted[: params.cold_reads]
    measured.cold, measured.cold_live = await cold_reads(http, tokens, oldest)
    measured.phases_s["rounds_with_and_cold_reads"] = time.monotonic() - clock
    measured.statuses = await statuses(dsn, [seeded.service_type_id, probe_seed.service_type_id])
    measured.visible = await visible_counts(client, seeded.service_type_id, parking.parked)


async def _count_pending(connection: asyncpg.Connection[Any], service_type_id: uuid.UUID) -> int:
    count: int = await connection.fetchval(
        "SELECT count(*) FROM consultation_requests "
        "WHERE consultation_service_type_id = $1 AND status = $2",
        service_type_id,
        PENDING,
    )
    return count
