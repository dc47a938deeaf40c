"""booking: whole bookings through the HTTP API, with the real worker.

The stack's API, the service's worker (``booking worker``, started here) and a
consultant driver that confirms at once. A booking is: the learner submits with a
``slot_id`` (POST until 201), the consultant sees it in their inbox (a database
read, polled every 20 ms) and confirms (POST), then the session is read until it is
``scheduled`` with a join URL. Each round:

1. the reference: empty workflows on a floor worker (``bench.floor_worker``), as
   the floor scenario runs them, so the booking rate has a same-run divisor;
2. peak: bookings with a fixed number in flight (closed loop): bookings/s;
3. half of peak: bookings started at half the rate step 2 just measured (open
   loop), where the latency targets are judged;
4. history length of a few bookings of the round, once they rest after the meeting.

Consultants are many (assignments spread) and each learner is a new user with its
own token; the stack's API runs with its per-user rate limits off.
"""

from __future__ import annotations

import gc
import os
import statistics
from collections import defaultdict
from dataclasses import dataclass

from bench.booking_load import (
    BookingTimes,
    LoadOutcome,
    Slot,
    Tokens,
    booked_facts,
    closed_loop,
    history_counts,
    http_client,
    open_loop,
    remove_seeded,
    seed_consultants,
    service_worker_command,
)
from bench.cpu import core_shares, cpu_seconds
from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult, number
from bench.scenarios.floor import KINDS as FLOOR_KINDS
from bench.scenarios.floor import Batches
from bench.stack import BENCH_API_LIMITS_SUMMARY, Component, asyncpg_dsn
from bench.stats import latencies_ms

TARGET_RATE_SHARE = 1 / 3
TARGET_SUBMIT_P99_MS = 100.0
TARGET_CONFIRM_P99_MS = 250.0
TARGET_HISTORY_EVENTS = 40
HISTORY_SAMPLES = 3
EMPTY = next(kind for kind in FLOOR_KINDS if kind.key == "empty")


@dataclass(frozen=True)
class BookingParams:
    consultants: int
    slots_per_consultant: int
    warmup: int
    peak_bookings: int
    peak_in_flight: int
    half_bookings: int
    reference_workflows: int
    reference_in_flight: int

    @classmethod
    def for_run(cls, quick: bool) -> BookingParams:
        if quick:
            return cls(10, 6, 3, 8, 4, 6, 20, 10)
        return cls(200, 10, 20, 150, 40, 60, 300, 50)

    def slots_needed(self, rounds: int) -> int:
        return self.warmup + rounds * (self.peak_bookings + self.half_bookings)


def _ms(samples: list[BookingTimes], attribute: str) -> list[int]:
    return [getattr(times, attribute) for times in samples]


@scenario(
    "booking",
    needs={Component.API},
    summary="bookings end to end through the API (submit → scheduled with a join URL)",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = BookingParams.for_run(ctx.quick)
    result = ScenarioResult("booking")
    dsn = asyncpg_dsn(ctx.stack.database_url)
    needed = params.slots_needed(ctx.rounds)
    per_consultant = max(params.slots_per_consultant, -(-needed // params.consultants))
    seeded = await seed_consultants(
        dsn,
        label=f"{ctx.run_id} booking",
        consultants=params.consultants,
        slots_per_consultant=per_consultant,
    )
    reference_queue = f"bench-booking-reference-{ctx.run_id}"
    worker_command, worker_label = service_worker_command()
    result.config = {
        "consultants": params.consultants,
        "slots": len(seeded.slots),
        "warmup_bookings": params.warmup,
        "peak": f"{params.peak_bookings} bookings per round, {params.peak_in_flight} in flight",
        "half_of_peak": (
            f"{params.half_bookings} bookings per round started at half the round's peak rate"
        ),
        "booking": "POST submit (slot_id) → consultant inbox shows it → POST confirm → "
        "GET session until scheduled with join_url; polling every 20 ms",
        "reference": (
            f"{params.reference_workflows} empty workflows per round, "
            f"{params.reference_in_flight} in flight, on a floor worker"
        ),
        "worker": worker_label,
        "temporal_partitions": ctx.stack.temporal_partitions,
        "api_limits": BENCH_API_LIMITS_SUMMARY,
    }
    worker = ctx.stack.start_python("booking worker", worker_command)
    floor_worker = ctx.stack.start_python(
        "booking reference worker", ["-m", "bench.floor_worker", "--task-queue", reference_queue]
    )
    tokens = Tokens(lambda role, user: ctx.stack.auth_headers(role, user))
    client = await ctx.stack.temporal_client()
    references = Batches(
        client, reference_queue, params.reference_in_flight, f"bench-{ctx.run_id}-booking-ref"
    )
    slots = iter(seeded.slots)

    def take(count: int) -> list[Slot]:
        return [next(slots) for _ in range(count)]

    figures: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    booked = 0
    history_samples: list[tuple[int, int | None]] = []
    pids = ctx.stack.process_ids()
    cpu_shares: dict[str, list[dict[str, float]]] = defaultdict(list)
    try:
        async with http_client(ctx.stack.api_url, params.peak_in_flight * 3) as http:
            ctx.say(f"booking: warming up ({params.warmup} bookings)")
            warm = await closed_loop(
                http, tokens, seeded.service_type_id, take(params.warmup), params.peak_in_flight
            )
            failures += warm.failures
            booked += len(warm.bookings)
            await references.run(EMPTY, params.reference_in_flight, "warmup")
            gc.collect()
            gc.freeze()
            for number_ in ctx.round_numbers():
                worker.ensure_alive()
                floor_worker.ensure_alive()
                reference = await references.run(EMPTY, params.reference_workflows, str(number_))
                figures["reference.rate"].append(reference.rate)
                figures["reference.p50"].append(latencies_ms(reference.latencies_ns).p50)

                cpu_before = cpu_seconds(pids)
                peak = await closed_loop(
                    http,
                    tokens,
                    seeded.service_type_id,
                    take(params.peak_bookings),
                    params.peak_in_flight,
                )
                cpu_between = cpu_seconds(pids)
                half_rate = max(peak.rate / 2, 0.1)
                half = await open_loop(
                    http, tokens, seeded.service_type_id, take(params.half_bookings), half_rate
                )
                cpu_shares["peak"].append(core_shares(cpu_before, cpu_between, peak.elapsed_s))
                cpu_shares["half"].append(
                    core_shares(cpu_between, cpu_seconds(pids), half.elapsed_s)
                )
                for outcome in (peak, half):
                    failures += outcome.failures
                    booked += len(outcome.bookings)
                if not peak.bookings or not half.bookings:
                    raise RuntimeError(f"no booking completed; first failure: {failures[:1]}")
                _record(figures, "peak", peak)
                _record(figures, "half", half)
                figures["peak.rate"].append(peak.rate)
                figures["half.rate"].append(half.rate)
                sampled = [
                    await history_counts(client, t.request_id)
                    for t in half.bookings[-HISTORY_SAMPLES:]
                ]
                history_samples += sampled
                figures["history.total"].append(max(total for total, _ in sampled))
                ctx.say(
                    f"booking: round {number_}: reference {reference.rate:.1f} empty wf/s; peak "
                    f"{peak.rate:.2f} bookings/s ({params.peak_in_flight} in flight); at "
                    f"{half_rate:.2f}/s: submit p99 {figures['half.submit.p99'][-1]:.1f} ms, "
                    f"confirm → join URL p99 {figures['half.ready.p99'][-1]:.1f} ms; "
                    f"history {figures['history.total'][-1]:.0f} events"
                )
            gc.unfreeze()
        facts = await booked_facts(dsn, seeded.consultant_ids)
    finally:
        ctx.stack.stop_child(floor_worker)
        ctx.stack.stop_child(worker)
        if not ctx.stack.owns_database:
            await remove_seeded(dsn, seeded)

    _report(ctx, params, result, figures)
    expected = params.slots_needed(ctx.rounds)
    result.check(
        "every booking reached scheduled with a join URL",
        booked == expected and not failures,
        f"{booked} of {expected}" + (f"; first failure: {failures[0]}" if failures else ""),
    )
    result.check(
        "the database holds one session with a join URL per booking",
        facts.sessions == booked and facts.sessions_with_join_url == booked,
        f"{facts.sessions} sessions, {facts.sessions_with_join_url} with a join URL, "
        f"{facts.booked_slots} booked slots",
    )
    result.check(
        "no two sessions (or slots) of a consultant overlap",
        facts.session_overlaps == 0 and facts.slot_overlaps == 0,
        f"{facts.session_overlaps} overlapping session pairs, {facts.slot_overlaps} slot pairs",
    )
    result.evidence["history_samples"] = [
        {"total_at_rest": total, "up_to_confirm_answered": at_scheduled}
        for total, at_scheduled in history_samples
    ]
    result.evidence["cpu_core_share_per_round"] = {
        "meaning": "CPU of each process (with its children) over the phase / wall time; "
        f"1.0 is one core busy; the machine has {os.cpu_count()} CPUs",
        **cpu_shares,
    }
    if "floor" in ctx.results:
        floor_rate = ctx.results["floor"].median("floor.empty.rate")
        result.evidence["floor_scenario_empty_rate_same_invocation"] = round(floor_rate, 2)
    return result


def _record(figures: dict[str, list[float]], phase: str, outcome: LoadOutcome) -> None:
    for key, attribute in (
        ("submit", "submit_ns"),
        ("offered", "offered_ns"),
        ("confirm_call", "confirm_call_ns"),
        ("ready", "confirm_to_ready_ns"),
        ("total", "total_ns"),
    ):
        latency = latencies_ms(_ms(outcome.bookings, attribute))
        figures[f"{phase}.{key}.p50"].append(latency.p50)
        figures[f"{phase}.{key}.p95"].append(latency.p95)
        figures[f"{phase}.{key}.p99"].append(latency.p99)


STEPS = {
    "submit": "submit (POST until 201)",
    "offered": "submit answered → in the consultant's inbox",
    "confirm_call": "confirm (POST until its answer)",
    "ready": "confirm → scheduled with a join URL",
    "total": "submit → scheduled with a join URL",
}


def _report(
    ctx: BenchContext,
    params: BookingParams,
    result: ScenarioResult,
    figures: dict[str, list[float]],
) -> None:
    result.figure(
        "booking.peak.rate",
        f"bookings/s at peak ({params.peak_in_flight} in flight)",
        "bookings/s",
        figures["peak.rate"],
        better=Better.HIGHER,
    )
    result.figure(
        "booking.half.rate",
        "bookings/s offered at half of peak (achieved)",
        "bookings/s",
        figures["half.rate"],
        better=Better.HIGHER,
    )
    result.figure(
        "booking.reference.empty.rate",
        "reference: empty workflows/s (same round)",
        "workflows/s",
        figures["reference.rate"],
        better=Better.HIGHER,
    )
    result.figure(
        "booking.reference.empty.p50_ms",
        "reference: empty workflow start → result, p50",
        "ms",
        figures["reference.p50"],
        better=Better.LOWER,
    )
    for phase, phase_label in (("half", "at half of peak"), ("peak", "at peak")):
        for step, step_label in STEPS.items():
            for q in ("p50", "p95", "p99"):
                if phase == "peak" and step in {"offered", "confirm_call"} and q == "p95":
                    continue
                result.figure(
                    f"booking.{phase}.{step}.{q}_ms",
                    f"{step_label}, {phase_label}, {q}",
                    "ms",
                    figures[f"{phase}.{step}.{q}"],
                    better=Better.LOWER,
                )
    result.figure(
        "booking.history_events",
        "history events of a booking at rest after its meeting (max of samples)",
        "events",
        figures["history.total"],
        better=Better.LOWER,
    )
    result.ratio(
        "booking.rate_over_empty",
        "booking rate at peak / empty-workflow rate",
        "booking.peak.rate",
        "booking.reference.empty.rate",
        "share of the empty-workflow rate a whole booking achieves (same round)",
    )
    result.ratio(
        "booking.ready_over_empty.p50",
        "confirm → join URL p50 (half of peak) / empty workflow p50",
        "booking.half.ready.p50_ms",
        "booking.reference.empty.p50_ms",
        "confirm-to-ready latency as a multiple of an empty workflow's round trip",
    )
    result.ratio(
        "booking.submit_over_empty.p50",
        "submit p50 (half of peak) / empty workflow p50",
        "booking.half.submit.p50_ms",
        "booking.reference.empty.p50_ms",
        "submit (update-with-start, persisted) as a multiple of an empty workflow",
    )
    quick = ctx.quick
    reason = "--quick sizes"
    result.target(
        "booking throughput ≥ 1/3 of the empty-workflow rate",
        "booking.rate_over_empty",
        ">=",
        TARGET_RATE_SHARE,
        applies=not quick,
        reason=reason,
        context=f"empty workflows {number(figures_median(figures, 'reference.rate'))}/s",
    )
    result.target(
        f"submit p99 ≤ {TARGET_SUBMIT_P99_MS:g} ms at half of peak",
        "booking.half.submit.p99_ms",
        "<=",
        TARGET_SUBMIT_P99_MS,
        applies=not quick,
        reason=reason,
        context=f"p50 {number(figures_median(figures, 'half.submit.p50'))} ms",
    )
    result.target(
        f"confirm → scheduled (join URL) p99 ≤ {TARGET_CONFIRM_P99_MS:g} ms at half of peak",
        "booking.half.ready.p99_ms",
        "<=",
        TARGET_CONFIRM_P99_MS,
        applies=not quick,
        reason=reason,
        context=(
            f"confirm call alone p99 {number(figures_median(figures, 'half.confirm_call.p99'))}"
            f" ms, p50 to join URL {number(figures_median(figures, 'half.ready.p50'))} ms"
        ),
    )
    result.target(
        f"≤ {TARGET_HISTORY_EVENTS} history events up to scheduled with a meeting",
        "booking.history_events",
        "<=",
        TARGET_HISTORY_EVENTS,
    )
    result.notes.append(
        "Client (this process: HTTP load and pollers), API, worker, Temporal dev server and "
        "PostgreSQL share this machine's CPUs; the pollers' reads are part of the load. "
        "The reference empty workflows run on their own floor worker between the phases."
    )


def figures_median(figures: dict[str, list[float]], key: str) -> float:
    return statistics.median(figures[key])
