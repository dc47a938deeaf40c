"""tracing: what OpenTelemetry tracing costs a request, off and on.

Two API + worker pairs on one PostgreSQL and one Temporal dev server, each pair on a
task queue of its own: one as deployed (no ``BOOKING_OTLP_ENDPOINT``), one with
tracing on, exporting every span over OTLP/HTTP to a receiver on loopback in this
process (``bench/otlp_sink.py``), so "on" pays for the real batching, encoding and
sending. The load is one request at a time, alternating between the pairs request by
request (untraced, traced, then traced, untraced, ...), so that a machine shared with
others drifts under both alike: submits (a learner's POST for a free slot, answered
once the workflow's first local activity has stored the request: the HTTP span, the
update-with-start, the workflow's spans, the activities' SQL), then availability
searches (the HTTP span and its SQL).

Figures: latency p50/p99 of each pair, and the CPU time the pair's two processes
spent per request (from ``/proc``), the figure least moved by other load on the
machine. "Zero cost when off": off is by construction the code before tracing (the
process imports none of it; ``tests/test_observability.py``); the untraced requests
split in two interleaved halves show the noise any difference lies within.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from bench.booking_load import REQUESTS, Seeded, Slot, Tokens, http_client, seed_consultants
from bench.cpu import cpu_seconds
from bench.otlp_sink import OtlpSink
from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult
from bench.stack import BENCH_API_LIMITS, LOCALHOST, ChildProcess, Component, asyncpg_dsn
from bench.stats import latencies_ms
from booking.devstack.ports import free_port
from booking.devstack.processes import wait_until_ready
from booking.tokens import Role

READY_TIMEOUT_S = 90.0
SEARCH_CONSULTANTS = 5
SEARCHERS = 5
MODES = ("off", "on")


@dataclass(frozen=True)
class TracingParams:
    submits: int
    searches: int
    consultants: int
    slots_per_consultant: int
    warmup: int

    @classmethod
    def for_run(cls, quick: bool, rounds: int) -> TracingParams:
        submits, searches, warmup = (4, 6, 2) if quick else (40, 60, 10)
        # Each pair's submits of every round and its warm-up, one slot each.
        slots = 2 * (rounds * submits + warmup)
        consultants = 10 if quick else 30
        return cls(
            submits=submits,
            searches=searches,
            consultants=consultants,
            slots_per_consultant=-(-slots // consultants) + 1,
            warmup=warmup,
        )


@dataclass
class Pair:
    """One API process and its worker, on a task queue of their own."""

    name: str
    api_url: str
    processes: list[ChildProcess] = field(default_factory=list)


def _start_pair(ctx: BenchContext, name: str, tracing_to: str | None) -> Pair:
    port = free_port()
    env = {
        "BOOKING_TEMPORAL_TASK_QUEUE": f"bench-tracing-{name}-{ctx.run_id}",
        **({"BOOKING_OTLP_ENDPOINT": tracing_to} if tracing_to else {}),
    }
    worker = ctx.stack.start_python(f"worker {name}", ["-m", "booking.cli", "worker"], env)
    api = ctx.stack.start_python(
        f"api {name}",
        ["-m", "booking.cli", "api"],
        {
            **env,
            **BENCH_API_LIMITS,
            "BOOKING_API_HOST": LOCALHOST,
            "BOOKING_API_PORT": str(port),
            "BOOKING_PUBLIC_BASE_URL": f"http://{LOCALHOST}:{port}",
        },
    )
    pair = Pair(name, f"http://{LOCALHOST}:{port}", [worker, api])

    def both_running() -> None:
        worker.ensure_alive()
        api.ensure_alive()

    wait_until_ready(
        f"{pair.api_url}/readyz",
        what=f"the API ({name})",
        timeout=READY_TIMEOUT_S,
        still_running=both_running,
        hint=f"; see {api.log_path}",
    )
    return pair


Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Load:
    """What a round sends: the same kind of request to both pairs, alternately."""

    tokens: Tokens
    seeded: Seeded
    slots: dict[str, list[Slot]]
    search_consultants: list[uuid.UUID]
    searchers: list[uuid.UUID] = field(
        default_factory=lambda: [uuid.uuid4() for _ in range(SEARCHERS)]
    )

    def submit(self, mode: str) -> Request:
        slot = self.slots[mode].pop()
        learner = self.tokens.of(Role.LEARNER, uuid.uuid4())

        def send(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return http.post(
                REQUESTS,
                json={"service_type_id": str(self.seeded.service_type_id), "slot_id": str(slot.id)},
                headers={**learner, "Idempotency-Key": str(uuid.uuid4())},
            )

        return send

    def search(self, number: int) -> Request:
        consultant = self.search_consultants[number % len(self.search_consultants)]
        learner = self.tokens.of(Role.LEARNER, self.searchers[number % len(self.searchers)])
        start = datetime.now(UTC) + timedelta(days=1)
        params = {
            "service_type_id": str(self.seeded.service_type_id),
            "consultant_id": str(consultant),
            "from": start.isoformat(),
            "to": (start + timedelta(days=7)).isoformat(),
        }

        def send(http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
            return http.get("/v1/availability/search", params=params, headers=learner)

        return send


@dataclass
class Phase:
    """One kind of request, ``count`` to each pair: latencies and CPU per pair."""

    latencies_ns: dict[str, list[int]] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)


async def _alternate(
    clients: dict[str, httpx.AsyncClient],
    pids: dict[str, dict[str, int]],
    count: int,
    request: Callable[[str, int], Request],
    expected: int,
) -> Phase:
    phase = Phase({mode: [] for mode in MODES})
    before = {mode: cpu_seconds(pids[mode]) for mode in MODES}
    for number in range(count):
        # ABBA: neither pair always goes first (a cache warmed by the other, a drift).
        for mode in MODES if number % 2 == 0 else MODES[::-1]:
            send = request(mode, number)
            began = time.perf_counter_ns()
            response = await send(clients[mode])
            phase.latencies_ns[mode].append(time.perf_counter_ns() - began)
            if response.status_code != expected:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
    for mode in MODES:
        after = cpu_seconds(pids[mode])
        phase.cpu_s[mode] = sum(after.values()) - sum(before[mode].values())
    return phase


@scenario(
    "tracing",
    needs={Component.DATABASE, Component.TEMPORAL},
    summary="submit and search latency and CPU per request, API + worker with tracing off vs on",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = TracingParams.for_run(ctx.quick, ctx.rounds)
    result = ScenarioResult("tracing")
    result.config = {
        "submits_per_pair_and_round": params.submits,
        "searches_per_pair_and_round": params.searches,
        "order": "one request at a time, alternating between the pairs (ABBA)",
        "exporter": "OTLP/HTTP protobuf to a receiver on loopback (this process), batched",
        "processes": "two API + worker pairs (untraced, traced), one PostgreSQL, one dev server",
    }
    dsn = asyncpg_dsn(ctx.stack.database_url)
    seeded = await seed_consultants(
        dsn,
        label=f"tracing {ctx.run_id}",
        consultants=params.consultants + SEARCH_CONSULTANTS,
        slots_per_consultant=params.slots_per_consultant,
    )
    search_consultants = seeded.consultant_ids[-SEARCH_CONSULTANTS:]
    searched = set(search_consultants)
    bookable = [slot for slot in seeded.slots if slot.consultant_id not in searched]
    load = Load(
        Tokens(lambda role, user: ctx.stack.auth_headers(role, user)),
        seeded,
        {mode: bookable[index::2] for index, mode in enumerate(MODES)},
        search_consultants,
    )
    figures: dict[str, list[float]] = {}
    with OtlpSink() as sink:
        pairs = {
            "off": _start_pair(ctx, "untraced", None),
            "on": _start_pair(ctx, "traced", sink.endpoint),
        }
        pids = {
            mode: {child.name: child.pid for child in pair.processes}
            for mode, pair in pairs.items()
        }
        clients = {mode: http_client(pair.api_url, connections=2) for mode, pair in pairs.items()}
        try:
            # First workflows, imports, pools: not measured.
            await _alternate(clients, pids, params.warmup, lambda mode, _: load.submit(mode), 201)
            await _alternate(clients, pids, params.warmup, lambda _, n: load.search(n), 200)
            for number in ctx.round_numbers():
                ctx.say(f"tracing round {number}: submits, then searches, alternating pairs")
                phases = {
                    "submit": await _alternate(
                        clients, pids, params.submits, lambda mode, _: load.submit(mode), 201
                    ),
                    "search": await _alternate(
                        clients, pids, params.searches, lambda _, n: load.search(n), 200
                    ),
                }
                for step, phase in phases.items():
                    for mode in MODES:
                        spread = latencies_ms(phase.latencies_ns[mode])
                        figures.setdefault(f"{mode}.{step}.p50", []).append(spread.p50)
                        figures.setdefault(f"{mode}.{step}.p99", []).append(spread.p99)
                        count = len(phase.latencies_ns[mode])
                        figures.setdefault(f"{mode}.{step}.cpu", []).append(
                            phase.cpu_s[mode] * 1000 / count
                        )
                    # The untraced requests in two interleaved halves: the noise floor.
                    untraced = phase.latencies_ns["off"]
                    for half, samples in (("off_a", untraced[0::2]), ("off_b", untraced[1::2])):
                        figures.setdefault(f"{half}.{step}.p50", []).append(
                            latencies_ms(samples).p50
                        )
        finally:
            for client in clients.values():
                await client.aclose()
            # A stopping process sends what it still holds before it exits (SIGTERM:
            # the API's lifespan and the worker shut their tracer provider down).
            for pair in pairs.values():
                for child in pair.processes:
                    ctx.stack.stop_child(child)
        received = dict(sink.spans)

    labels = {
        "off": "tracing off",
        "on": "tracing on, exported over OTLP/HTTP",
        "off_a": "tracing off, even requests",
        "off_b": "tracing off, odd requests",
    }
    for key, rounds in figures.items():
        mode, step, what = key.split(".")
        if what == "cpu":
            label, unit = f"{step}: CPU of API + worker per request, {labels[mode]}", "ms"
        else:
            label, unit = f"{step} {what}, {labels[mode]}", "ms"
        result.figure(f"tracing.{key}", label, unit, rounds, better=Better.LOWER)
    for step in ("submit", "search"):
        for what in ("p50", "p99", "cpu"):
            result.ratio(
                f"tracing.{step}.{what}.on_vs_off",
                f"{step} {'CPU per request' if what == 'cpu' else what}: on / off",
                f"tracing.on.{step}.{what}",
                f"tracing.off.{step}.{what}",
                "what tracing on costs a request (1.0: nothing)",
            )
        result.ratio(
            f"tracing.{step}.p50.off_b_vs_off_a",
            f"{step} p50: odd / even untraced requests",
            f"tracing.off_b.{step}.p50",
            f"tracing.off_a.{step}.p50",
            "the same untraced pair against itself: the noise of this run",
        )
    result.evidence["spans_received_by_service"] = received
    result.check(
        "the traced pair's spans reached the OTLP receiver (API and worker)",
        received.get("booking-api", 0) > 0 and received.get("booking-worker", 0) > 0,
        f"{received}",
    )
    result.notes.append(
        "The requests it submits stay pending (their slots held) with its catalogue: on "
        "a stack of the benchmark's own they go with its database."
    )
    result.notes.append(
        "Off is the deployed default: no tracer provider, no middleware, no SQL listener, "
        "no Temporal interceptor (the process imports none of OpenTelemetry's SDK). CPU "
        "per request includes each pair's idle work over the same wall time (task "
        "polls, the webhook dispatcher's polling), alike for both."
    )
    return result
