"""contention: 200 concurrent requests aimed at 10 slots → exactly 10 sessions.

Each round seeds 10 consultants with one free slot each, exactly as long as the
service (so a booking leaves nothing behind), and 200 learners submit at once, 20
per slot, each with its ``slot_id``. A driver per consultant watches the inbox and
confirms whatever is offered until that consultant's slot is booked. The round ends
when all ten sessions are scheduled with a join URL; the SQL check then counts the
sessions of these consultants and looks for any overlapping pair (sessions, and
slots).

The losers either were refused at submit (the slot was no longer free: 409/422) or
were accepted and wait for another attempt; neither may ever produce a session.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from bench.booking_load import (
    REQUESTS,
    SERVICE_MINUTES,
    STEP_TIMEOUT_S,
    Headers,
    Seeded,
    Tokens,
    booked_facts,
    check_no_overlaps,
    contention_rounds,
    http_client,
    seed_consultants,
    service_worker_command,
    wait_join_url,
)
from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult
from bench.stack import Component, asyncpg_dsn
from bench.stats import latencies_ms
from booking.tokens import Role

SETTLE_S = 2.0  # after the tenth session: time for a wrong extra one to show up


@dataclass(frozen=True)
class ContentionParams:
    requests: int
    slots: int

    @classmethod
    def for_run(cls, quick: bool) -> ContentionParams:
        return cls(40, 4) if quick else cls(200, 10)


@dataclass
class RoundOutcome:
    seconds_to_all_booked: float
    submit_ns: list[int]
    statuses: Counter[int]
    sessions: int
    sessions_with_join_url: int
    session_overlaps: int
    slot_overlaps: int
    confirm_refusals: int


async def _submit(
    http: httpx.AsyncClient, learner: Headers, seeded: Seeded, slot_index: int
) -> tuple[int, int]:
    slot = seeded.slots[slot_index]
    body = {"service_type_id": str(seeded.service_type_id), "slot_id": str(slot.id)}
    began = time.perf_counter_ns()
    response = await http.post(
        REQUESTS, json=body, headers={**learner, "Idempotency-Key": str(uuid.uuid4())}
    )
    return response.status_code, time.perf_counter_ns() - began


class BurstClock:
    """When the drivers give up: ``STEP_TIMEOUT_S`` after the burst of submits has
    been answered, not after it began. On a slow machine the burst alone can take
    most of a minute, and nothing can be offered before its requests exist."""

    def __init__(self) -> None:
        self._answered_at: float | None = None

    def burst_answered(self) -> None:
        self._answered_at = time.monotonic()

    def expired(self) -> bool:
        return (
            self._answered_at is not None and time.monotonic() > self._answered_at + STEP_TIMEOUT_S
        )


async def _consultant_driver(
    http: httpx.AsyncClient, consultant: Headers, refusals: list[int], clock: BurstClock
) -> str:
    """Confirm what is offered until a confirmation books; the session id."""
    offered = 0
    while not clock.expired():
        response = await http.get(
            REQUESTS, params={"status": "pending_confirmation", "limit": 100}, headers=consultant
        )
        if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
            # The API sheds load past its bound on requests in flight (the burst of
            # submits can fill it): come back later, as its Retry-After says.
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        response.raise_for_status()
        for item in response.json()["items"]:
            offered += 1
            confirmed = await http.post(f"{REQUESTS}/{item['id']}/confirm", headers=consultant)
            if confirmed.status_code == httpx.codes.OK and confirmed.json()["session_id"]:
                session_id: str = confirmed.json()["session_id"]
                await wait_join_url(http, consultant, session_id)
                return session_id
            refusals.append(confirmed.status_code)
        await asyncio.sleep(0.02)
    raise RuntimeError(
        f"no booking for this consultant within {STEP_TIMEOUT_S:.0f} s of the burst's "
        f"answers ({offered} offers seen, none booked)"
    )


async def play_round(
    ctx: BenchContext,
    params: ContentionParams,
    tokens: Tokens,
    number_: int,
    api: str | Sequence[str] | None = None,
) -> tuple[RoundOutcome, Seeded]:
    """One round on fresh consultants; ``api``: the API process(es) to spread the
    requests over (default: the stack's API)."""
    dsn = asyncpg_dsn(ctx.stack.database_url)
    seeded = await seed_consultants(
        dsn,
        label=f"{ctx.run_id} contention {number_}",
        consultants=params.slots,
        slots_per_consultant=1,
        slot_minutes=SERVICE_MINUTES,
    )
    consultants = [tokens.of(Role.CONSULTANT, c) for c in seeded.consultant_ids]
    refusals: list[int] = []
    # Tokens first: minting is not part of the burst.
    learners = [tokens.of(Role.LEARNER, uuid.uuid4()) for _ in range(params.requests)]
    connections = params.requests + params.slots * 2
    async with http_client(api or ctx.stack.api_url, connections) as http:
        began = time.perf_counter()
        clock = BurstClock()
        drivers = [
            asyncio.create_task(_consultant_driver(http, headers, refusals, clock))
            for headers in consultants
        ]
        try:
            submits = await asyncio.gather(
                *(
                    _submit(http, learner, seeded, n % params.slots)
                    for n, learner in enumerate(learners)
                )
            )
        finally:
            clock.burst_answered()
        await asyncio.gather(*drivers)
        elapsed = time.perf_counter() - began
        await asyncio.sleep(SETTLE_S)
    facts = await booked_facts(dsn, seeded.consultant_ids)
    outcome = RoundOutcome(
        seconds_to_all_booked=elapsed,
        submit_ns=[ns for _, ns in submits],
        statuses=Counter(code for code, _ in submits),
        sessions=facts.sessions,
        sessions_with_join_url=facts.sessions_with_join_url,
        session_overlaps=facts.session_overlaps,
        slot_overlaps=facts.slot_overlaps,
        confirm_refusals=len(refusals),
    )
    return outcome, seeded


def check_exact_sessions(
    result: ScenarioResult, params: ContentionParams, outcomes: Sequence[RoundOutcome]
) -> None:
    exact = all(o.sessions == params.slots for o in outcomes)
    result.check(
        f"exactly {params.slots} sessions each round, each with a join URL",
        exact and all(o.sessions_with_join_url == params.slots for o in outcomes),
        "; ".join(f"{o.sessions} ({o.sessions_with_join_url} with URL)" for o in outcomes),
    )


@scenario(
    "contention",
    needs={Component.API},
    summary="200 concurrent requests for 10 slots: exactly 10 sessions, no overlap",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = ContentionParams.for_run(ctx.quick)
    result = ScenarioResult("contention")
    _, worker_label = service_worker_command()
    result.config = {
        "requests_per_round": params.requests,
        "slots_per_round": params.slots,
        "per_slot": params.requests // params.slots,
        "slot": f"{SERVICE_MINUTES} minutes, as long as the service (no remainder)",
        "submission": "all at once (one coroutine each, one connection each), new learner each",
        "consultants": "one driver per consultant: inbox poll every 20 ms, confirm at once",
        "worker": worker_label,
        "temporal_partitions": ctx.stack.temporal_partitions,
    }
    tokens = Tokens(lambda role, user: ctx.stack.auth_headers(role, user))
    figures: dict[str, list[float]] = defaultdict(list)

    def report(number_: int, outcome: RoundOutcome) -> None:
        submit = latencies_ms(outcome.submit_ns)
        figures["seconds"].append(outcome.seconds_to_all_booked)
        figures["submit.p50"].append(submit.p50)
        figures["submit.p99"].append(submit.p99)
        figures["sessions"].append(outcome.sessions)
        ctx.say(
            f"contention: round {number_}: {outcome.sessions} sessions in "
            f"{outcome.seconds_to_all_booked:.2f} s; submits {dict(outcome.statuses)}, "
            f"p50 {submit.p50:.0f} ms p99 {submit.p99:.0f} ms; "
            f"{outcome.session_overlaps} overlaps"
        )

    outcomes = await contention_rounds(
        ctx, "contention", lambda number_: play_round(ctx, params, tokens, number_), report
    )

    result.figure(
        "contention.seconds_to_all_booked",
        f"first submit → all {params.slots} sessions scheduled with a join URL",
        "s",
        figures["seconds"],
        better=Better.LOWER,
    )
    result.figure(
        "contention.submit.p50_ms",
        f"submit under the burst of {params.requests}, p50",
        "ms",
        figures["submit.p50"],
        better=Better.LOWER,
    )
    result.figure(
        "contention.submit.p99_ms",
        f"submit under the burst of {params.requests}, p99",
        "ms",
        figures["submit.p99"],
        better=Better.LOWER,
    )
    result.figure("contention.sessions", "sessions per round", "sessions", figures["sessions"])
    result.ratio(
        "contention.submit.p99_over_p50",
        "burst submit p99 / p50",
        "contention.submit.p99_ms",
        "contention.submit.p50_ms",
        "how far the slowest submits of the burst queue behind the typical one",
    )
    result.target(
        f"exactly {params.slots} sessions for {params.requests} requests",
        "contention.sessions",
        "<=",
        params.slots,
    )
    check_exact_sessions(result, params, outcomes)
    check_no_overlaps(result, outcomes)
    result.evidence["submit_statuses_per_round"] = [
        {str(code): count for code, count in o.statuses.items()} for o in outcomes
    ]
    result.evidence["confirm_refusals_per_round"] = [o.confirm_refusals for o in outcomes]
    if "floor" in ctx.results:
        floor_p50 = ctx.results["floor"].median("floor.empty.p50_ms")
        result.evidence["floor_empty_p50_ms_same_invocation"] = round(floor_p50, 2)
    return result
