"""scale: one and two worker processes, one and two API processes, one stack.

The same Temporal server and PostgreSQL serve four layouts of the service's own
processes, measured in every round: 1 API + 1 worker (the base), 1 API + 2 workers,
2 APIs + 2 workers, 2 APIs + 1 worker. Each is one process away from the next (and
the last from the first), so a round grows or shrinks the stack by one process at a
time; odd rounds walk the layouts forward, even rounds back, so that no layout is
always measured first or last. Workers run ``booking worker`` on the one task queue;
APIs are ``booking api`` on their own loopback ports, and the load generator sends
each request to the next API in turn (``bench.booking_load.RoundRobin``, as a load
balancer would), so a booking's submit, inbox reads and confirm meet different
processes.

For each layout, the booking scenario's measurement: bookings with a fixed number in
flight (peak bookings/s), then bookings started open loop at half of that rate
(submit p99 there). Around the peak phase, the CPU time of every process (each API,
each worker, the Temporal server, PostgreSQL with its backends, this client) from
``/proc``: CPU-seconds per booking by component is what bounds the gain on a machine
of few cores, and what projects the cost per core. Afterwards the contention
scenario's round (200 requests for 10 slots) runs across two APIs and two workers:
exactly 10 sessions, no overlap.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.booking_load import (
    LoadOutcome,
    Slot,
    Tokens,
    booked_facts,
    check_no_overlaps,
    closed_loop,
    contention_rounds,
    http_client,
    open_loop,
    remove_seeded,
    seed_consultants,
    service_worker_command,
)
from bench.cpu import core_shares, cpu_seconds
from bench.registry import BenchContext, scenario
from bench.results import Better, CpuTimes, ScenarioResult, cpu_usage_between
from bench.scenarios.contention import (
    ContentionParams,
    RoundOutcome,
    check_exact_sessions,
    play_round,
)
from bench.stack import BENCH_API_LIMITS_SUMMARY, BenchStack, ChildProcess, Component, asyncpg_dsn
from bench.stats import latencies_ms
from booking.devstack.errors import DevStackError

logger = logging.getLogger("bench")

WORKER_READY_TIMEOUT_S = 60.0
# What each process is counted as; the service's cost leaves out the load generator.
COMPONENTS = ("api", "worker", "temporal", "postgresql", "client")
SERVICE_COMPONENTS = ("api", "worker", "temporal", "postgresql")
# A worker of a two-worker layout that took less than this share of the workers' CPU
# did not really serve: the layout would be one worker under another name.
MIN_WORKER_SHARE = 0.1


@dataclass(frozen=True)
class Layout:
    apis: int
    workers: int

    @property
    def key(self) -> str:
        return f"api{self.apis}_worker{self.workers}"

    @property
    def label(self) -> str:
        return f"{self.apis} API{'s' if self.apis > 1 else ''}, {self.workers} worker" + (
            "s" if self.workers > 1 else ""
        )


BASE = Layout(1, 1)
# A cycle in which each layout is one process away from its neighbours.
LAYOUTS = (BASE, Layout(1, 2), Layout(2, 2), Layout(2, 1))


def round_order(number_: int) -> list[Layout]:
    """Round 1 walks the cycle forward from the base, round 2 back from where round 1
    ended, and so on: one process changes between two layouts, none more."""
    return list(LAYOUTS) if number_ % 2 == 1 else list(reversed(LAYOUTS))


@dataclass(frozen=True)
class ScaleParams:
    consultants: int
    warmup: int
    peak_bookings: int
    peak_in_flight: int
    half_bookings: int

    @classmethod
    def for_run(cls, quick: bool) -> ScaleParams:
        if quick:
            return cls(consultants=10, warmup=4, peak_bookings=8, peak_in_flight=4, half_bookings=6)
        return cls(
            consultants=200, warmup=10, peak_bookings=80, peak_in_flight=40, half_bookings=40
        )

    def per_layout(self) -> int:
        return self.warmup + self.peak_bookings + self.half_bookings

    def slots_needed(self, rounds: int) -> int:
        return rounds * len(LAYOUTS) * self.per_layout()


def component_of(process: str) -> str:
    """``"api 2"`` → ``"api"``: the processes' names start with their component."""
    return process.split()[0]


def cpu_per_booking(
    before: Mapping[str, float], after: Mapping[str, float], bookings: int
) -> dict[str, float]:
    """CPU-seconds per booking of each component (its processes summed) over a phase."""
    if bookings <= 0:
        raise ValueError("CPU per booking of no bookings")
    totals = dict.fromkeys(COMPONENTS, 0.0)
    for process, seconds in after.items():
        totals[component_of(process)] += seconds - before.get(process, 0.0)
    return {component: seconds / bookings for component, seconds in totals.items()}


def projection(per_booking: Mapping[str, float], cores: float) -> dict[str, float]:
    """What the CPU cost per booking says about throughput.

    ``per_core``: bookings/s one core gives when only the service runs on it;
    ``ceiling``: bookings/s ``cores`` cores give when the load generator shares them,
    as it does here (the rate at which every core would be busy).
    """
    service = sum(per_booking[component] for component in SERVICE_COMPONENTS)
    everything = service + per_booking["client"]
    return {
        "service_cpu_s_per_booking": service,
        "per_core": 1 / service if service else 0.0,
        "ceiling": cores / everything if everything else 0.0,
    }


@dataclass
class LayoutRound:
    """One layout in one round."""

    layout: Layout
    peak: LoadOutcome
    half: LoadOutcome
    half_rate: float
    cpu_per_booking: dict[str, float]
    core_shares: dict[str, float]
    machine: dict[str, float] | None
    requests_per_api: list[int]
    """What each API process served over the peak and half phases (its ``/metrics``)."""
    peak_requests: int
    """What the API processes served together over the peak phase."""
    warm_bookings: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def requests_per_booking(self) -> float:
        """HTTP requests per booking at peak: submit, confirm, and the 20 ms polls."""
        return self.peak_requests / len(self.peak.bookings)

    @property
    def api_cpu_per_request(self) -> float:
        """The APIs' CPU-seconds per request served at peak."""
        return self.cpu_per_booking["api"] / self.requests_per_booking

    @property
    def cores_free_of_others(self) -> float:
        """The machine's CPUs less what other tenants took during the peak phase."""
        cores = float(os.cpu_count() or 1)
        others = (self.machine or {}).get("others_share", 0.0)
        return cores * (1 - others)


class Processes:
    """The scenario's API and worker processes, grown or shrunk to a layout one
    process at a time. The stack's own API is the first API and always runs."""

    def __init__(self, stack: BenchStack, client: Client, worker_command: list[str]) -> None:
        self._stack = stack
        self._client = client
        self._worker_command = worker_command
        self.apis: list[tuple[ChildProcess | None, str]] = [(None, stack.api_url)]
        self.workers: list[ChildProcess] = []

    @property
    def api_urls(self) -> list[str]:
        return [url for _, url in self.apis]

    async def arrange(self, layout: Layout) -> None:
        while len(self.workers) > layout.workers:
            self._stack.stop_child(self.workers.pop())
        while len(self.apis) > layout.apis:
            child, _ = self.apis.pop()
            if child is not None:
                self._stack.stop_child(child)
        while len(self.apis) < layout.apis:
            self.apis.append(self._stack.start_api(f"scale api {len(self.apis) + 1}"))
        while len(self.workers) < layout.workers:
            worker = self._stack.start_python(
                f"scale worker {len(self.workers) + 1}", self._worker_command
            )
            self.workers.append(worker)
            await wait_for_poller(self._client, self._stack.settings().temporal_task_queue, worker)

    def ensure_alive(self) -> None:
        for child in [*self.workers, *(child for child, _ in self.apis if child is not None)]:
            child.ensure_alive()

    def pids(self) -> dict[str, int]:
        """Every process of the stack, named by component (see ``component_of``)."""
        stack = self._stack.process_ids()
        pids = {"temporal": stack["temporal"], "postgresql": stack["postgresql"]}
        pids["client"] = stack["benchmark (client)"]
        pids["api 1"] = stack["api"]
        for number_, (child, _) in enumerate(self.apis[1:], start=2):
            assert child is not None
            pids[f"api {number_}"] = child.pid
        for number_, worker in enumerate(self.workers, start=1):
            pids[f"worker {number_}"] = worker.pid
        return pids

    def close(self) -> None:
        for worker in reversed(self.workers):
            self._stack.stop_child(worker)
        self.workers.clear()
        for child, _ in reversed(self.apis[1:]):
            assert child is not None
            self._stack.stop_child(child)
        del self.apis[1:]


async def wait_for_poller(client: Client, task_queue: str, worker: ChildProcess) -> None:
    """Until the worker polls the task queue for workflow tasks (its SDK identity is
    ``pid@host``), so that the next bookings can reach it."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        worker.ensure_alive()
        described = await client.workflow_service.describe_task_queue(request)
        if any(poller.identity.startswith(f"{worker.pid}@") for poller in described.pollers):
            return
        await asyncio.sleep(0.2)
    raise DevStackError(
        f"{worker.name} did not poll {task_queue} within {WORKER_READY_TIMEOUT_S:.0f} s; "
        f"see {worker.log_path}"
    )


async def served_requests(http: httpx.AsyncClient, base_url: str) -> int:
    """Requests this API process has answered so far (its own ``/metrics``), scrapes
    left out: proof of which process served what, from the server's side."""
    response = await http.get(f"{base_url}/metrics")
    response.raise_for_status()
    total = 0.0
    for family in text_string_to_metric_families(response.text):
        if family.name != "booking_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("route") != "/metrics":
                total += sample.value
    return int(total)


async def _measure_layout(
    params: ScaleParams,
    processes: Processes,
    tokens: Tokens,
    service_type: uuid.UUID,
    take: Callable[[int], list[Slot]],
) -> LayoutRound:
    """Warm-up, peak (closed loop, CPU per process around it), half of peak (open loop)."""
    urls = processes.api_urls
    connections = params.peak_in_flight * 3
    async with (
        http_client(urls if len(urls) > 1 else urls[0], connections) as http,
        httpx.AsyncClient(timeout=10.0) as scraper,
    ):
        warm = await closed_loop(http, tokens, service_type, take(params.warmup), params.warmup)
        served_before = [await served_requests(scraper, url) for url in urls]
        pids = processes.pids()
        cpu_before, machine_before = cpu_seconds(pids), CpuTimes.read()
        peak = await closed_loop(
            http, tokens, service_type, take(params.peak_bookings), params.peak_in_flight
        )
        cpu_after, machine_after = cpu_seconds(pids), CpuTimes.read()
        served_between = [await served_requests(scraper, url) for url in urls]
        half_rate = max(peak.rate / 2, 0.1)
        half = await open_loop(http, tokens, service_type, take(params.half_bookings), half_rate)
        served_after = [await served_requests(scraper, url) for url in urls]
    if not peak.bookings or not half.bookings:
        failures = [*warm.failures, *peak.failures, *half.failures]
        raise RuntimeError(f"no booking completed; first failure: {failures[:1]}")
    return LayoutRound(
        layout=Layout(len(urls), len(processes.workers)),
        peak=peak,
        half=half,
        half_rate=half_rate,
        cpu_per_booking=cpu_per_booking(cpu_before, cpu_after, len(peak.bookings)),
        core_shares=core_shares(cpu_before, cpu_after, peak.elapsed_s),
        machine=cpu_usage_between(machine_before, machine_after),
        requests_per_api=[a - b for a, b in zip(served_after, served_before, strict=True)],
        peak_requests=sum(served_between) - sum(served_before),
        warm_bookings=len(warm.bookings),
        failures=[*warm.failures, *peak.failures, *half.failures],
    )


@scenario(
    "scale",
    needs={Component.API},
    summary="1 vs 2 workers and 1 vs 2 API processes on one stack; 200-on-10 across them",
    # About 7 minutes: within make bench's 15 it would leave the others no room.
    by_default=False,
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = ScaleParams.for_run(ctx.quick)
    contention = ContentionParams.for_run(ctx.quick)
    result = ScenarioResult("scale")
    dsn = asyncpg_dsn(ctx.stack.database_url)
    seeded = await seed_consultants(
        dsn,
        label=f"{ctx.run_id} scale",
        consultants=params.consultants,
        slots_per_consultant=-(-params.slots_needed(ctx.rounds) // params.consultants),
    )
    worker_command, worker_label = service_worker_command()
    result.config = {
        "layouts": [layout.label for layout in LAYOUTS],
        "order": "odd rounds in this order, even rounds reversed; one process changes "
        "between consecutive layouts",
        "consultants": params.consultants,
        "per_layout_and_round": (
            f"{params.warmup} warm-up bookings, {params.peak_bookings} at "
            f"{params.peak_in_flight} in flight (peak), {params.half_bookings} started at "
            "half of that peak rate"
        ),
        "booking": "as the booking scenario: POST submit (slot_id) → consultant inbox shows "
        "it → POST confirm → GET session until scheduled with join_url; polling every 20 ms",
        "api": "booking api processes on their own loopback ports; each request to the next "
        "one in turn",
        "worker": f"{worker_label}; as many processes as the layout has, one task queue",
        "cpu": "utime + stime from /proc of each process with its children (PostgreSQL: the "
        "postmaster with every backend) over the peak phase",
        "contention": (
            f"{contention.requests} requests for {contention.slots} slots per round across "
            "2 APIs and 2 workers"
        ),
        "temporal_partitions": ctx.stack.temporal_partitions,
        "api_limits": BENCH_API_LIMITS_SUMMARY,
    }
    tokens = Tokens(lambda role, user: ctx.stack.auth_headers(role, user))
    client = await ctx.stack.temporal_client()
    processes = Processes(ctx.stack, client, worker_command)
    slots = iter(seeded.slots)

    def take(count: int) -> list[Slot]:
        return [next(slots) for _ in range(count)]

    measured: list[LayoutRound] = []
    contention_outcomes: list[RoundOutcome] = []
    contention_error = ""
    try:
        gc.collect()
        gc.freeze()
        for number_ in ctx.round_numbers():
            for layout in round_order(number_):
                await processes.arrange(layout)
                processes.ensure_alive()
                one = await _measure_layout(params, processes, tokens, seeded.service_type_id, take)
                measured.append(one)
                ctx.say(
                    f"scale: round {number_}, {layout.label}: {one.peak.rate:.2f} bookings/s "
                    f"at peak; at {one.half_rate:.2f}/s submit p99 "
                    f"{latencies_ms([t.submit_ns for t in one.half.bookings]).p99:.0f} ms; "
                    f"CPU ms per booking "
                    + ", ".join(f"{c} {s * 1000:.0f}" for c, s in one.cpu_per_booking.items())
                )
        gc.unfreeze()
        facts = await booked_facts(dsn, seeded.consultant_ids)
        # The contention rounds start their own two workers; the second API stays.
        await processes.arrange(Layout(2, 0))
        try:
            contention_outcomes = await contention_rounds(
                ctx,
                "scale contention",
                lambda n: play_round(ctx, contention, tokens, n, api=processes.api_urls),
                lambda n, outcome: ctx.say(
                    f"scale: contention round {n} across 2 APIs and 2 workers: "
                    f"{outcome.sessions} sessions in {outcome.seconds_to_all_booked:.2f} s, "
                    f"{outcome.session_overlaps} overlaps"
                ),
                workers=2,
            )
        except Exception as error:
            # The layouts' figures stand without it: a contention round that cannot
            # finish (on an overloaded machine, no offer within a driver's minute) fails
            # its check and the run, but the file with everything measured is written.
            logger.exception("scale: the contention rounds did not finish")
            contention_error = f"{type(error).__name__}: {error}"
    finally:
        processes.close()
        if not ctx.stack.owns_database:
            await remove_seeded(dsn, seeded)

    _report(ctx, params, contention, result, measured, contention_outcomes)
    booked = sum(m.warm_bookings + len(m.peak.bookings) + len(m.half.bookings) for m in measured)
    failures = [failure for m in measured for failure in m.failures]
    expected = params.slots_needed(ctx.rounds)
    result.check(
        "every booking (warm-ups included) reached scheduled with a join URL",
        not failures and booked == expected,
        f"{booked} of {expected}" + (f"; first failure: {failures[0]}" if failures else ""),
    )
    result.check(
        "the database holds one session with a join URL per booking, no overlap",
        facts.sessions == expected
        and facts.sessions_with_join_url == expected
        and facts.session_overlaps == 0
        and facts.slot_overlaps == 0,
        f"{facts.sessions} sessions, {facts.sessions_with_join_url} with a join URL; "
        f"{facts.session_overlaps} overlapping session pairs, {facts.slot_overlaps} slot pairs",
    )
    _check_spread(result, measured)
    result.check(
        f"every contention round ({ctx.rounds}) finished across 2 APIs and 2 workers",
        not contention_error and len(contention_outcomes) == ctx.rounds,
        contention_error or f"{len(contention_outcomes)} rounds",
    )
    if contention_outcomes:
        check_exact_sessions(result, contention, contention_outcomes)
        check_no_overlaps(result, contention_outcomes)
    return result


def _check_spread(result: ScenarioResult, measured: Sequence[LayoutRound]) -> None:
    """Both APIs served requests and both workers worked, wherever a layout has two."""
    apis = [m.requests_per_api for m in measured if m.layout.apis > 1]
    result.check(
        "in two-API layouts each API process served half the requests (its /metrics)",
        all(min(counts) >= 0.4 * sum(counts) for counts in apis),
        "; ".join("/".join(str(c) for c in counts) for counts in apis),
    )
    shares = [
        [m.core_shares.get(f"worker {n}", 0.0) for n in (1, 2)]
        for m in measured
        if m.layout.workers > 1
    ]
    result.check(
        f"in two-worker layouts each worker took ≥ {MIN_WORKER_SHARE:.0%} of the workers' CPU",
        all(min(pair) >= MIN_WORKER_SHARE * sum(pair) for pair in shares),
        "; ".join("/".join(f"{share:.2f}" for share in pair) + " cores" for pair in shares),
    )


def _by_layout(measured: Sequence[LayoutRound]) -> dict[Layout, list[LayoutRound]]:
    """Each layout's rounds in round order, so that ratios pair rounds."""
    grouped: dict[Layout, list[LayoutRound]] = defaultdict(list)
    for one in measured:
        grouped[one.layout].append(one)
    return grouped


def _report(
    ctx: BenchContext,
    params: ScaleParams,
    contention: ContentionParams,
    result: ScenarioResult,
    measured: Sequence[LayoutRound],
    contention_outcomes: Sequence[RoundOutcome],
) -> None:
    grouped = _by_layout(measured)
    cores = os.cpu_count() or 1
    for layout in LAYOUTS:
        rounds = grouped[layout]
        key, label = f"scale.{layout.key}", layout.label
        result.figure(
            f"{key}.peak.rate",
            f"{label}: bookings/s at peak ({params.peak_in_flight} in flight)",
            "bookings/s",
            [m.peak.rate for m in rounds],
            better=Better.HIGHER,
        )
        for q in ("p50", "p99"):
            result.figure(
                f"{key}.half.submit.{q}_ms",
                f"{label}: submit at half of peak, {q}",
                "ms",
                [getattr(latencies_ms([t.submit_ns for t in m.half.bookings]), q) for m in rounds],
                better=Better.LOWER,
            )
        for component in COMPONENTS:
            result.figure(
                f"{key}.cpu.{component}_ms",
                f"{label}: CPU per booking at peak, {component}"
                + (" (load generator)" if component == "client" else ""),
                "CPU ms",
                [m.cpu_per_booking[component] * 1000 for m in rounds],
                better=Better.LOWER,
            )
        result.figure(
            f"{key}.cpu.service_ms",
            f"{label}: CPU per booking at peak, the service (API + worker + Temporal + PostgreSQL)",
            "CPU ms",
            [
                projection(m.cpu_per_booking, cores)["service_cpu_s_per_booking"] * 1000
                for m in rounds
            ],
            better=Better.LOWER,
        )
        result.figure(
            f"{key}.api.requests_per_booking",
            f"{label}: HTTP requests per booking at peak (submit, confirm, the 20 ms polls)",
            "requests",
            [m.requests_per_booking for m in rounds],
        )
        result.figure(
            f"{key}.cpu.api_per_request_ms",
            f"{label}: API CPU per request at peak",
            "CPU ms",
            [m.api_cpu_per_request * 1000 for m in rounds],
            better=Better.LOWER,
        )
        result.figure(
            f"{key}.ceiling",
            f"{label}: bookings/s at which the CPUs left by other tenants would all be busy "
            "(their count / CPU per booking, client included)",
            "bookings/s",
            [projection(m.cpu_per_booking, m.cores_free_of_others)["ceiling"] for m in rounds],
            better=Better.HIGHER,
        )
        result.ratio(
            f"{key}.rate_over_ceiling",
            f"{label}: peak bookings/s / CPU ceiling",
            f"{key}.peak.rate",
            f"{key}.ceiling",
            "1.0: every CPU the other tenants left was busy with the booking load (CPU-bound)",
        )
    for layout in LAYOUTS[1:]:
        key = f"scale.{layout.key}"
        result.ratio(
            f"{key}.rate_over_base",
            f"bookings/s at peak, {layout.label} / {BASE.label}",
            f"{key}.peak.rate",
            f"scale.{BASE.key}.peak.rate",
            "what the extra process(es) bought in throughput (same round)",
        )
        result.ratio(
            f"{key}.submit_p99_over_base",
            f"submit p99 at half of peak, {layout.label} / {BASE.label}",
            f"{key}.half.submit.p99_ms",
            f"scale.{BASE.key}.half.submit.p99_ms",
            "below 1: the extra process(es) shortened the slowest submits (same round)",
        )
        result.ratio(
            f"{key}.service_cpu_over_base",
            f"service CPU per booking, {layout.label} / {BASE.label}",
            f"{key}.cpu.service_ms",
            f"scale.{BASE.key}.cpu.service_ms",
            "above 1: more processes cost more CPU per booking (more polling, connections)",
        )
    result.evidence["per_layout_and_round"] = [_evidence(m) for m in measured]
    result.evidence["projection"] = _projection_evidence(grouped, cores)
    _report_notes(ctx, result, cores)
    if contention_outcomes:
        _report_contention(contention, result, contention_outcomes)


def _report_contention(
    contention: ContentionParams, result: ScenarioResult, outcomes: Sequence[RoundOutcome]
) -> None:
    figures: dict[str, list[float]] = defaultdict(list)
    for outcome in outcomes:
        figures["seconds"].append(outcome.seconds_to_all_booked)
        figures["sessions"].append(outcome.sessions)
        figures["submit.p99"].append(latencies_ms(outcome.submit_ns).p99)
    result.figure(
        "scale.contention.seconds_to_all_booked",
        f"contention across 2 APIs and 2 workers: first submit → all {contention.slots} "
        "sessions with a join URL",
        "s",
        figures["seconds"],
        better=Better.LOWER,
    )
    result.figure(
        "scale.contention.submit.p99_ms",
        f"contention across 2 APIs and 2 workers: submit p99 under the burst of "
        f"{contention.requests}",
        "ms",
        figures["submit.p99"],
        better=Better.LOWER,
    )
    result.figure(
        "scale.contention.sessions",
        "contention across 2 APIs and 2 workers: sessions per round",
        "sessions",
        figures["sessions"],
    )
    result.target(
        f"exactly {contention.slots} sessions for {contention.requests} requests across "
        "2 APIs and 2 workers",
        "scale.contention.sessions",
        "<=",
        contention.slots,
    )
    result.evidence["contention_submit_statuses_per_round"] = [
        {str(code): count for code, count in o.statuses.items()} for o in outcomes
    ]


def _report_notes(ctx: BenchContext, result: ScenarioResult, cores: int) -> None:
    result.notes += [
        f"The machine has {cores} CPUs; the load generator (this process: the bookings' "
        "HTTP calls and their 20 ms pollers) runs on them too and is counted as the "
        "client. Where every CPU is busy at peak (rate over ceiling near 1), another "
        "process adds no CPU to share: the gain of two workers or two APIs is bounded by "
        "the cores, not by the processes.",
        "Per core: the service's CPU-seconds per booking (API + worker + Temporal + "
        "PostgreSQL) invert to bookings/s per core; by component they say how many cores "
        "of each a rate needs (evidence.projection).",
    ]
    if ctx.quick:
        result.notes.append("--quick sizes: the figures show the harness works, little more.")


def _evidence(one: LayoutRound) -> dict[str, Any]:
    projected = projection(one.cpu_per_booking, one.cores_free_of_others)
    return {
        "layout": one.layout.label,
        "peak_bookings_per_s": round(one.peak.rate, 3),
        "half_rate_offered": round(one.half_rate, 3),
        "half_bookings_per_s": round(one.half.rate, 3),
        "cpu_ms_per_booking": {c: round(s * 1000, 1) for c, s in one.cpu_per_booking.items()},
        "core_shares_at_peak": one.core_shares,
        "machine_at_peak": one.machine,
        "cpus_left_by_other_tenants": round(one.cores_free_of_others, 2),
        "ceiling_bookings_per_s": round(projected["ceiling"], 2),
        "requests_served_per_api": one.requests_per_api,
        "requests_per_booking_at_peak": round(one.requests_per_booking, 1),
        "api_cpu_ms_per_request_at_peak": round(one.api_cpu_per_request * 1000, 2),
    }


def _projection_evidence(
    grouped: Mapping[Layout, Sequence[LayoutRound]], cores: int
) -> dict[str, Any]:
    """Medians over the rounds: CPU-seconds per booking by component, and what follows."""
    projected: dict[str, Any] = {
        "meaning": "CPU-seconds per booking at peak (median over rounds) by component; "
        "bookings_per_s_per_core: 1 / the service's CPU-seconds per booking; "
        "CPU-seconds per booking are also the cores of each component that one booking "
        "a second keeps busy",
    }
    for layout, rounds in grouped.items():
        median = {
            component: statistics.median(m.cpu_per_booking[component] for m in rounds)
            for component in COMPONENTS
        }
        summary = projection(median, cores)
        projected[layout.key] = {
            "cpu_s_per_booking": {c: round(s, 4) for c, s in median.items()},
            "service_cpu_s_per_booking": round(summary["service_cpu_s_per_booking"], 4),
            "bookings_per_s_per_core": round(summary["per_core"], 2),
            f"bookings_per_s_on_{cores}_cores_with_the_client": round(summary["ceiling"], 2),
        }
    return projected
