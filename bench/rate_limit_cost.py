"""rate_limit: what the shared (PostgreSQL) rate limit costs a request.

``python -m bench.rate_limit_cost [--rounds N] [--quick]`` starts PostgreSQL and the
Temporal dev server like ``make bench``, then two API processes of the same code on
the same database, differing in one setting: ``BOOKING_RATE_LIMIT_SCOPE=global`` (each
request also spends from its user's shared bucket) and ``=process`` (only the
process's own buckets, no round trip). Both have limits far above the load, so
nothing is refused and every request pays the full price of a granted one.

Per round, interleaved in blocks so that a drift of the machine favours neither:

- one request at a time (the added latency), ``GET /v1/service-types`` spread over
  20 users per API: p50 and p99 of each, and their ratio;
- 8 in flight (what it costs the process's throughput): requests per second;
- the statement alone, from this process on a pool like the API's
  (``SharedRateLimiter.check``: checkout, the upsert, return): p50/p99;
- the CPU each API process and PostgreSQL spent per request of the one-at-a-time
  phase (``/proc``), which other tenants of the machine disturb far less than latency.

Writes ``bench/results/rate_limit.json`` and regenerates ``SUMMARY.md``. It is not
part of ``make bench`` (a question asked once per change of the limiter, not of
every run); rerun it after changing ``api/shared_rate_limit.py`` or
``db/rate_limits.py``.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.rate_limit import Limit
from api.shared_rate_limit import SharedRateLimiter
from bench.cpu import cpu_seconds
from bench.registry import BenchContext, Scenario
from bench.results import Better, ScenarioResult
from bench.stack import LOCALHOST, BenchStack, ChildProcess, Component
from bench.stats import latencies_ms
from booking.devstack.ports import free_port
from booking.devstack.processes import wait_until_ready
from booking.tokens import Role
from core.settings import RateLimitScope
from core.vocabulary import CallKind
from db.engine import create_autocommit_engine, create_engine
from db.models import RateLimitBucket

NAME = "rate_limit"
ROUTE = "/v1/service-types"
USERS_PER_API = 20
BLOCK = 10  # requests to one API before switching to the other
IN_FLIGHT = 8
API_READY_TIMEOUT = 90.0
# Far above the load: every request is granted and pays the granted path's cost.
UNREACHED_LIMITS = {
    "BOOKING_RATE_LIMIT_READ_PER_SECOND": "1000000",
    "BOOKING_RATE_LIMIT_READ_BURST": "1000000",
    "BOOKING_RATE_LIMIT_WRITE_PER_SECOND": "1000000",
    "BOOKING_RATE_LIMIT_WRITE_BURST": "1000000",
}
SCOPES = (RateLimitScope.GLOBAL, RateLimitScope.PROCESS)


@dataclass(frozen=True)
class Params:
    sequential: int
    concurrent: int
    statements: int
    warmup: int

    @classmethod
    def for_run(cls, quick: bool) -> Params:
        if quick:
            return cls(sequential=50, concurrent=50, statements=50, warmup=10)
        return cls(sequential=500, concurrent=800, statements=1000, warmup=100)


@dataclass
class Api:
    scope: RateLimitScope
    url: str
    process: ChildProcess
    user_ids: list[uuid.UUID]
    users: list[dict[str, str]]


def _start_api(stack: BenchStack, scope: RateLimitScope) -> Api:
    port = free_port()
    child = stack.start_python(
        f"api-{scope.value}",
        ["-m", "booking.cli", "api"],
        {
            **UNREACHED_LIMITS,
            "BOOKING_RATE_LIMIT_SCOPE": scope.value,
            # No sweep during the run: the check at the end counts the buckets written.
            "BOOKING_RATE_LIMIT_SWEEP_INTERVAL": "86400",
            "BOOKING_API_HOST": LOCALHOST,
            "BOOKING_API_PORT": str(port),
            "BOOKING_PUBLIC_BASE_URL": f"http://{LOCALHOST}:{port}",
        },
    )
    url = f"http://{LOCALHOST}:{port}"
    wait_until_ready(
        f"{url}/readyz",
        what=f"the API ({scope.value} rate limits)",
        timeout=API_READY_TIMEOUT,
        still_running=child.ensure_alive,
        hint=f"; see {child.log_path}",
    )
    ids = [uuid.uuid4() for _ in range(USERS_PER_API)]
    return Api(scope, url, child, ids, [stack.auth_headers(Role.LEARNER, user) for user in ids])


async def _sequential(http: httpx.AsyncClient, api: Api, count: int, offset: int) -> list[int]:
    """``count`` requests one after the other; their latencies (ns)."""
    samples = []
    for n in range(count):
        began = time.perf_counter_ns()
        response = await http.get(
            f"{api.url}{ROUTE}", headers=api.users[(offset + n) % len(api.users)]
        )
        samples.append(time.perf_counter_ns() - began)
        if response.status_code != 200:
            raise RuntimeError(f"{api.scope}: {response.status_code} {response.text[:200]}")
    return samples


async def _throughput(http: httpx.AsyncClient, api: Api, count: int) -> float:
    """Requests per second with ``IN_FLIGHT`` at a time."""
    queue = iter(range(count))

    async def lane() -> None:
        for n in queue:
            response = await http.get(f"{api.url}{ROUTE}", headers=api.users[n % len(api.users)])
            if response.status_code != 200:
                raise RuntimeError(f"{api.scope}: {response.status_code}")

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    return count / (time.perf_counter() - began)


async def _statements(limiter: SharedRateLimiter, count: int) -> list[int]:
    limit = Limit(rate=1_000_000.0, burst=1_000_000)
    users = [uuid.uuid4() for _ in range(USERS_PER_API)]
    samples = []
    for n in range(count):
        began = time.perf_counter_ns()
        await limiter.check(users[n % len(users)], CallKind.READ, limit)
        samples.append(time.perf_counter_ns() - began)
    return samples


def _interleaved(apis: Sequence[Api], count: int, round_number: int) -> list[tuple[Api, int]]:
    """Blocks of ``BLOCK`` requests per API, alternating, the first API alternating by
    round; returns (api, block size) in order."""
    order = list(apis) if round_number % 2 else list(reversed(apis))
    blocks: list[tuple[Api, int]] = []
    left = count
    while left > 0:
        size = min(BLOCK, left)
        blocks.extend((api, size) for api in order)
        left -= size
    return blocks


async def run(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult(NAME)
    params = Params.for_run(ctx.quick)
    apis = {scope: _start_api(ctx.stack, scope) for scope in SCOPES}
    settings = ctx.stack.settings()
    engine = create_engine(settings, application_name="bench-rate-limit")
    limiter = SharedRateLimiter(
        create_autocommit_engine(
            settings,
            application_name="bench-rate-limit-buckets",
            pool_size=settings.rate_limit_pool_size,
        )
    )
    result.config = {
        "route": f"GET {ROUTE}",
        "users_per_api": USERS_PER_API,
        "sequential_per_round": params.sequential,
        "concurrent_per_round": params.concurrent,
        "in_flight": IN_FLIGHT,
        "statements_per_round": params.statements,
        "database_pool": f"{settings.database_pool_size} + {settings.database_max_overflow}",
        "pre_ping": settings.database_pre_ping,
        "rate_limit_pool": settings.rate_limit_pool_size,
    }
    latency: dict[RateLimitScope, dict[str, list[float]]] = {
        scope: {"p50": [], "p99": []} for scope in SCOPES
    }
    rates: dict[RateLimitScope, list[float]] = {scope: [] for scope in SCOPES}
    # CPU per request of each API process and of PostgreSQL while that API was driven:
    # what the machine pays, much less sensitive than latency to other tenants' load.
    cpu: dict[RateLimitScope, dict[str, list[float]]] = {
        scope: {"api": [], "postgresql": []} for scope in SCOPES
    }
    pids = ctx.stack.process_ids()
    roots = {scope.value: apis[scope].process.pid for scope in SCOPES}
    if "postgresql" in pids:
        roots["postgresql"] = pids["postgresql"]
    statement: dict[str, list[float]] = {"p50": [], "p99": []}
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as http:
            for api in apis.values():  # connections, caches, prepared statements
                await _sequential(http, api, params.warmup, 0)
            await _statements(limiter, params.warmup)
            for number in ctx.round_numbers():
                samples: dict[RateLimitScope, list[int]] = {scope: [] for scope in SCOPES}
                spent = {scope: {"api": 0.0, "postgresql": 0.0} for scope in SCOPES}
                for n, (api, size) in enumerate(
                    _interleaved(list(apis.values()), params.sequential, number)
                ):
                    before = cpu_seconds(roots)
                    samples[api.scope] += await _sequential(http, api, size, n)
                    after = cpu_seconds(roots)
                    spent[api.scope]["api"] += after[api.scope.value] - before[api.scope.value]
                    spent[api.scope]["postgresql"] += after.get("postgresql", 0.0) - before.get(
                        "postgresql", 0.0
                    )
                for scope in SCOPES:
                    summary = latencies_ms(samples[scope])
                    latency[scope]["p50"].append(summary.p50)
                    latency[scope]["p99"].append(summary.p99)
                    for part in ("api", "postgresql"):
                        cpu[scope][part].append(1000 * spent[scope][part] / len(samples[scope]))
                ordered = SCOPES if number % 2 else tuple(reversed(SCOPES))
                for scope in ordered:
                    rates[scope].append(await _throughput(http, apis[scope], params.concurrent))
                alone = latencies_ms(await _statements(limiter, params.statements))
                statement["p50"].append(alone.p50)
                statement["p99"].append(alone.p99)
                ctx.say(
                    f"round {number}: p50 global {latency[RateLimitScope.GLOBAL]['p50'][-1]:.2f} ms"
                    f" / process {latency[RateLimitScope.PROCESS]['p50'][-1]:.2f} ms, "
                    f"statement p50 {alone.p50:.2f} ms"
                )
        await _check_rows(result, engine, apis)
    finally:
        await limiter.aclose()
        await engine.dispose()
        for api in apis.values():
            ctx.stack.stop_child(api.process)
    _report(result, latency, rates, statement, cpu if "postgresql" in roots else None)
    return result


async def _check_rows(
    result: ScenarioResult, engine: AsyncEngine, apis: dict[RateLimitScope, Api]
) -> None:
    """The global API wrote its users' buckets, the per-process one none."""
    for scope, expected in ((RateLimitScope.GLOBAL, USERS_PER_API), (RateLimitScope.PROCESS, 0)):
        users = apis[scope].user_ids
        async with engine.connect() as connection:
            rows = await connection.scalar(
                select(func.count())
                .select_from(RateLimitBucket)
                .where(RateLimitBucket.user_id.in_(users))
            )
        result.check(
            f"the {scope.value} API's users have {expected} shared buckets",
            rows == expected,
            f"{rows} rows",
        )


def _report(
    result: ScenarioResult,
    latency: dict[RateLimitScope, dict[str, list[float]]],
    rates: dict[RateLimitScope, list[float]],
    statement: dict[str, list[float]],
    cpu: dict[RateLimitScope, dict[str, list[float]]] | None,
) -> None:
    for scope in SCOPES:
        for q in ("p50", "p99"):
            result.figure(
                f"{scope.value}.{q}",
                f"GET {ROUTE} {q}, one at a time, {scope.value} rate limits",
                "ms",
                latency[scope][q],
                better=Better.LOWER,
            )
        result.figure(
            f"{scope.value}.rate",
            f"requests/s at {IN_FLIGHT} in flight, {scope.value} rate limits",
            "req/s",
            rates[scope],
            better=Better.HIGHER,
        )
    added = [
        g - p
        for g, p in zip(
            latency[RateLimitScope.GLOBAL]["p50"],
            latency[RateLimitScope.PROCESS]["p50"],
            strict=True,
        )
    ]
    result.figure("added.p50", "p50 added by the shared bucket", "ms", added, better=Better.LOWER)
    for q in ("p50", "p99"):
        result.figure(
            f"statement.{q}",
            f"the shared bucket's statement alone (checkout, upsert, return) {q}",
            "ms",
            statement[q],
            better=Better.LOWER,
        )
        result.ratio(
            f"latency.{q}",
            f"{q} global / process",
            f"global.{q}",
            f"process.{q}",
            "how much slower a request is with the shared bucket (1.0: no cost)",
        )
    if cpu is not None:
        for scope in SCOPES:
            for part, label in (("api", "the API process"), ("postgresql", "PostgreSQL")):
                result.figure(
                    f"{scope.value}.cpu_{part}",
                    f"CPU of {label} per request, {scope.value} rate limits",
                    "ms",
                    cpu[scope][part],
                    better=Better.LOWER,
                )
        for part in ("api", "postgresql"):
            result.ratio(
                f"cpu_{part}",
                f"CPU per request of {part}: global / process",
                f"global.cpu_{part}",
                f"process.cpu_{part}",
                "what the shared bucket adds to this part's CPU per request (1.0: nothing)",
            )
    result.ratio(
        "throughput",
        "req/s global / process",
        "global.rate",
        "process.rate",
        "the share of the per-process throughput left with the shared bucket",
    )


SCENARIO = Scenario(
    NAME,
    run,
    frozenset({Component.DATABASE, Component.TEMPORAL}),
    "cost per request of the shared (PostgreSQL) rate limit: two APIs, global vs process",
)


if __name__ == "__main__":
    from bench.run import main
    from booking.cli import exit_without_finalizing

    # As ``python -m bench``: leave without finalization (the Temporal SDK's threads).
    exit_without_finalizing(main(sys.argv[1:], scenarios={NAME: SCENARIO}))
