"""claim: a request's first assignment as one activity or as the steps it replaced.

``python -m bench.claim_cost [--rounds N] [--quick]`` starts PostgreSQL like ``make
bench`` and runs the production activities in this process on a pool like the
worker's. Each request is claimed one of two ways, in alternating blocks so that a
drift of the machine favours neither:

- ``one step``: ``claim_slot``, one transaction (what the workflow does since the
  ``claim-candidates-and-hold-in-one-transaction`` patch);
- ``two steps``: ``find_candidates``, then ``hold_slot`` per candidate until one
  holds, each its own transaction (what it did before, and still does for workflows
  of the older shape).

Per round: the latency of each claim (p50, p99), the CPU this process and PostgreSQL
spent per claim (``/proc``: far less disturbed by other tenants than latency), and
claims per second with ``IN_FLIGHT`` at a time. What it leaves out is the worker's
own cost per local activity (an activation of the workflow and a marker per
activity), which the floor scenario's activity workflows show.

Writes ``bench/results/claim.json`` and regenerates ``SUMMARY.md``. Not part of ``make
bench``; rerun it after changing the claim (``activities/requests.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from activities.requests import RequestActivities
from bench.cpu import cpu_seconds
from bench.registry import BenchContext, Scenario
from bench.results import Better, ScenarioResult
from bench.stack import Component
from bench.stats import latencies_ms
from db.engine import create_engine
from db.models import AvailabilitySlot, ConsultantProfile, ConsultationRequest, ServiceType
from workflows.contracts.activity_io import (
    ClaimedSlot,
    ClaimSlotInput,
    FindCandidatesInput,
    PersistRequestInput,
    claimed_slot,
)
from workflows.contracts.workflow_input import LifecycleTimings

NAME = "claim"
BLOCK = 10  # claims of one way before switching to the other
IN_FLIGHT = 8
CLAIM_ROUNDS = 2  # as the workflow's
SLOTS_PER_DAY = 8
DAYS = 14
WAYS = ("one_step", "two_steps")
LABELS = {"one_step": "one step (claim_slot)", "two_steps": "two steps (find, then hold)"}


@dataclass(frozen=True)
class Params:
    consultants: int
    sequential: int
    concurrent: int

    @classmethod
    def for_run(cls, quick: bool) -> Params:
        if quick:
            return cls(consultants=20, sequential=40, concurrent=40)
        return cls(consultants=100, sequential=300, concurrent=300)


Claim = Callable[[ClaimSlotInput], Awaitable[ClaimedSlot | None]]


def _ways(activities: RequestActivities) -> dict[str, Claim]:
    async def one_step(arg: ClaimSlotInput) -> ClaimedSlot | None:
        return (await activities.claim_slot(arg)).claimed

    async def two_steps(arg: ClaimSlotInput) -> ClaimedSlot | None:
        for _ in range(arg.rounds):
            found = await activities.find_candidates(arg.query)
            for candidate in found.candidates:
                hold = arg.hold_input(candidate)
                claimed = claimed_slot(hold, await activities.hold_slot(hold))
                if claimed is not None:
                    return claimed
            if not found.candidates:
                return None
        return None

    return {"one_step": one_step, "two_steps": two_steps}


async def _catalog(engine: AsyncEngine, consultants: int, first_day: datetime) -> uuid.UUID:
    """A service type and ``consultants`` consultants with ``SLOTS_PER_DAY`` hour-long
    slots on each of ``DAYS`` days: more slots than a run claims."""
    service_type_id = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(consultants)]
    slots = [
        {
            "consultant_user_id": consultant,
            "start_time": first_day + timedelta(days=day, hours=8 + hour),
            "end_time": first_day + timedelta(days=day, hours=9 + hour),
            "status": "available",
        }
        for consultant in ids
        for day in range(DAYS)
        for hour in range(SLOTS_PER_DAY)
    ]
    async with engine.begin() as connection:
        await connection.execute(
            insert(ServiceType).values(
                id=service_type_id, name=f"claim-{service_type_id}", default_duration_minutes=60
            )
        )
        await connection.execute(
            insert(ConsultantProfile),
            [{"consultant_user_id": c, "specializations": []} for c in ids],
        )
        await connection.execute(insert(AvailabilitySlot), slots)
    return service_type_id


async def _requests(
    activities: RequestActivities, service_type_id: uuid.UUID, count: int, window: datetime
) -> list[uuid.UUID]:
    ids = []
    for _ in range(count):
        request_id = uuid.uuid4()
        await activities.persist_request(
            PersistRequestInput(
                request_id=request_id,
                requester_id=uuid.uuid4(),
                service_type_id=service_type_id,
                window_start=window,
                window_end=window + timedelta(days=DAYS),
                requested_slot_id=None,
                preferred_consultant_id=None,
                company_id=None,
                idempotency_key=None,
                details_staged=False,
            )
        )
        ids.append(request_id)
    return ids


def _claim_input(
    request_id: uuid.UUID, service_type_id: uuid.UUID, window: datetime, timings: LifecycleTimings
) -> ClaimSlotInput:
    return ClaimSlotInput(
        query=FindCandidatesInput(
            request_id=request_id,
            service_type_id=service_type_id,
            duration_minutes=60,
            not_before=window,
            window_end=window + timedelta(days=DAYS),
        ),
        attempt=1,
        now=datetime.now(UTC),
        timings=timings,
        rounds=CLAIM_ROUNDS,
    )


async def run(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult(NAME)
    params = Params.for_run(ctx.quick)
    settings = ctx.stack.settings()
    timings = LifecycleTimings.from_settings(settings)
    engine = create_engine(settings, application_name="bench-claim")
    activities = RequestActivities(async_sessionmaker(engine, expire_on_commit=False))
    ways = _ways(activities)
    window = (datetime.now(UTC) + timedelta(days=2)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    pids = ctx.stack.process_ids()
    roots = {"bench": os.getpid()}
    if "postgresql" in pids:  # not when the benchmark is given a database of its own
        roots["postgresql"] = pids["postgresql"]
    latency: dict[str, dict[str, list[float]]] = {way: {"p50": [], "p99": []} for way in WAYS}
    cpu: dict[str, dict[str, list[float]]] = {way: {p: [] for p in roots} for way in WAYS}
    rates: dict[str, list[float]] = {way: [] for way in WAYS}
    claimed_total = dict.fromkeys(WAYS, 0)
    asked_total = dict.fromkeys(WAYS, 0)
    raced = dict.fromkeys(WAYS, 0)
    raced_asked = dict.fromkeys(WAYS, 0)
    result.config = {
        "consultants": params.consultants,
        "slots": params.consultants * DAYS * SLOTS_PER_DAY,
        "claims_one_at_a_time_per_round_and_way": params.sequential,
        "claims_in_flight_per_round_and_way": params.concurrent,
        "in_flight": IN_FLIGHT,
        "block": BLOCK,
        "database_pool": f"{settings.database_pool_size} + {settings.database_max_overflow}",
        "pre_ping": settings.database_pre_ping,
    }
    try:
        service_type_id = await _catalog(engine, params.consultants, window)
        for number in ctx.round_numbers():
            samples: dict[str, list[int]] = {way: [] for way in WAYS}
            spent = {way: dict.fromkeys(roots, 0.0) for way in WAYS}
            order = WAYS if number % 2 else tuple(reversed(WAYS))
            pending = await _requests(activities, service_type_id, 2 * params.sequential, window)
            for block in range(0, len(pending), BLOCK):
                way = order[(block // BLOCK) % 2]
                before = cpu_seconds(roots)
                for request_id in pending[block : block + BLOCK]:
                    began = time.perf_counter_ns()
                    claimed = await ways[way](
                        _claim_input(request_id, service_type_id, window, timings)
                    )
                    samples[way].append(time.perf_counter_ns() - began)
                    claimed_total[way] += claimed is not None
                    asked_total[way] += 1
                after = cpu_seconds(roots)
                for part in roots:
                    spent[way][part] += after.get(part, 0.0) - before.get(part, 0.0)
            for way in WAYS:
                summary = latencies_ms(samples[way])
                latency[way]["p50"].append(summary.p50)
                latency[way]["p99"].append(summary.p99)
                for part in roots:
                    cpu[way][part].append(1000 * spent[way][part] / len(samples[way]))
            for way in order:
                batch = await _requests(activities, service_type_id, params.concurrent, window)
                rate, held = await _in_flight(ways[way], batch, service_type_id, window, timings)
                rates[way].append(rate)
                raced[way] += held
                raced_asked[way] += len(batch)
            ctx.say(
                f"round {number}: p50 one step {latency['one_step']['p50'][-1]:.2f} ms / two "
                f"steps {latency['two_steps']['p50'][-1]:.2f} ms; in flight "
                f"{rates['one_step'][-1]:.0f} / {rates['two_steps'][-1]:.0f} claims/s"
            )
        await _check(result, claimed_total, asked_total)
        total = sum(claimed_total.values()) + sum(raced.values())
        await _check_holds(result, engine, total)
        for way in WAYS:
            result.figure(
                f"{way}.raced_held_share",
                f"share of racing claims that held a slot, {LABELS[way]}",
                "share",
                [raced[way] / max(raced_asked[way], 1)],
                better=Better.HIGHER,
            )
    finally:
        await engine.dispose()
    _report(result, latency, cpu, rates)
    return result


async def _in_flight(
    claim: Claim,
    requests: list[uuid.UUID],
    service_type_id: uuid.UUID,
    window: datetime,
    timings: LifecycleTimings,
) -> tuple[float, int]:
    """Claims per second with ``IN_FLIGHT`` at a time (they race for the same
    earliest slots), and how many held one."""
    queue = iter(requests)
    held = 0

    async def lane() -> None:
        nonlocal held
        for request_id in queue:
            claimed = await claim(_claim_input(request_id, service_type_id, window, timings))
            held += claimed is not None

    began = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    return len(requests) / (time.perf_counter() - began), held


async def _check(result: ScenarioResult, claimed: dict[str, int], asked: dict[str, int]) -> None:
    """One at a time, every claim finds a free slot (there are more than the run
    claims); racing claims may lose all their candidates to each other."""
    for way in WAYS:
        result.check(
            f"every claim the {way.replace('_', ' ')} way made alone held a slot",
            claimed[way] == asked[way],
            f"{claimed[way]} of {asked[way]}",
        )


async def _check_holds(result: ScenarioResult, engine: AsyncEngine, claims: int) -> None:
    async with engine.connect() as connection:
        held = await connection.scalar(
            select(func.count())
            .select_from(AvailabilitySlot)
            .where(AvailabilitySlot.status == "held")
        )
        waiting = await connection.scalar(
            select(func.count())
            .select_from(ConsultationRequest)
            .where(ConsultationRequest.status == "pending_confirmation")
        )
    result.check(
        "one held slot per claimed request, none twice",
        held == waiting == claims,
        f"{held} held slots, {waiting} requests awaiting confirmation, {claims} claims",
    )


def _report(
    result: ScenarioResult,
    latency: dict[str, dict[str, list[float]]],
    cpu: dict[str, dict[str, list[float]]],
    rates: dict[str, list[float]],
) -> None:
    for way in WAYS:
        for q in ("p50", "p99"):
            result.figure(
                f"{way}.{q}",
                f"claim {q}, one at a time, {LABELS[way]}",
                "ms",
                latency[way][q],
                better=Better.LOWER,
            )
        for part, values in cpu[way].items():
            who = "the activities' process" if part == "bench" else "PostgreSQL"
            result.figure(
                f"{way}.cpu_{part}",
                f"CPU of {who} per claim, {LABELS[way]}",
                "ms",
                values,
                better=Better.LOWER,
            )
        result.figure(
            f"{way}.rate",
            f"claims/s at {IN_FLIGHT} in flight, {LABELS[way]}",
            "claims/s",
            rates[way],
            better=Better.HIGHER,
        )
    for q in ("p50", "p99"):
        result.ratio(
            f"latency.{q}",
            f"{q} one step / two steps",
            f"one_step.{q}",
            f"two_steps.{q}",
            "a claim's latency in one transaction as a share of the two-step claim's",
        )
    for part in cpu["one_step"]:
        result.ratio(
            f"cpu_{part}",
            f"CPU per claim of {part}: one step / two steps",
            f"one_step.cpu_{part}",
            f"two_steps.cpu_{part}",
            "what a claim costs this part in one transaction, as a share of two steps",
        )
    result.ratio(
        "throughput",
        "claims/s one step / two steps",
        "one_step.rate",
        "two_steps.rate",
        "throughput of racing claims in one transaction relative to two steps",
    )


SCENARIO = Scenario(
    NAME,
    run,
    frozenset({Component.DATABASE}),
    "a request's first assignment: claim_slot in one transaction vs find, then hold",
)


if __name__ == "__main__":
    from bench.run import main
    from booking.cli import exit_without_finalizing

    exit_without_finalizing(main(sys.argv[1:], scenarios={NAME: SCENARIO}))
