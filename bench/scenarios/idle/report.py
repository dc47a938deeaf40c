"""The idle scenario's result: what ``take_measurements`` found, as figures, ratios,
targets, checks, evidence and notes (``bench/results.py``)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bench.booking_load import Seeded
from bench.registry import BenchContext
from bench.results import Better, ScenarioResult, number
from bench.scenarios.idle.measure import (
    API_KINDS,
    CONFIRMATION_TIMEOUT,
    CONTROL,
    DEFAULT_PARK_BUDGET_S,
    KINDS,
    LIVE_QUERY,
    PARK_BUDGET_VARIABLE,
    PENDING,
    SETTLE_S,
    TARGET_PARKED,
    IdleParams,
    Measured,
    ProgressSample,
    Samples,
    pooled_api_calls,
    worker_cache_size,
)
from bench.stats import latencies_ms, percentile

TARGET_WORKER_MB = 100.0
TARGET_P99_RATIO = 1.10


def run_config(
    ctx: BenchContext, params: IdleParams, seeded: Seeded, worker_label: str
) -> dict[str, Any]:
    """What this run was asked to do (the result's ``config``)."""
    return {
        "parked_asked": params.parked,
        "park_budget_s": params.park_budget_s,
        "park_in_flight": params.in_flight,
        "parking": "api.consultation_workflow.submit (the API's update-with-start) from the "
        "benchmark process, a new learner and a free slot each; the workflow persists the "
        "request, finds and holds the slot and offers it: pending_confirmation",
        "consultants": params.consultants,
        "slots": len(seeded.slots),
        "confirmation_timeout": f"{CONFIRMATION_TIMEOUT.days} days (the service type's)",
        "probes": f"{params.probes} requests through POST /v1/consultation-requests, "
        "one consultant each",
        "reference_mix": dict.fromkeys(KINDS, params.calls_per_kind),
        "reference_calls": "one at a time, one client, kinds interleaved; an untimed "
        "warm-up pass before each side's rounds",
        "cold_reads": params.cold_reads,
        "worker": worker_label,
        "worker_workflow_cache": worker_cache_size(ctx.stack.settings()),
        "temporal_partitions": ctx.stack.temporal_partitions,
    }


def report_measurements(
    ctx: BenchContext, params: IdleParams, result: ScenarioResult, measured: Measured
) -> None:
    parking = measured.parking
    _memory_figures(params, result, measured)
    _latency_figures(result, measured)
    _targets(ctx, params, result, measured)
    _checks(params, result, measured)
    result.evidence.update(
        {
            "parking_progress": [
                {
                    "seconds": round(sample.seconds, 1),
                    "parked": sample.parked,
                    "worker_rss_mb": round(sample.worker_rss_mb or 0.0, 1),
                }
                for sample in parking.progress
            ],
            "parking_cpu_core_shares": {
                "meaning": "CPU of each process (with its children) while parking / wall "
                "time; 1.0 is one core busy",
                **parking.cpu_core_shares,
            },
            "parking_budget_ended": parking.budget_ended,
            "temporal_rss_mb_before_after": [
                None if value is None else round(value, 1) for value in measured.temporal_rss_mb
            ],
            "latency_by_kind_ms": {
                side: _by_kind(rounds)
                for side, rounds in (("without", measured.without), ("with", measured.with_parked))
            },
            "cold_reads_with_live_state": f"{measured.cold_live} of {len(measured.cold)}",
            "phases_s": {key: round(value, 1) for key, value in measured.phases_s.items()},
        }
    )
    result.notes += _notes(params, measured)


def _memory_figures(params: IdleParams, result: ScenarioResult, measured: Measured) -> None:
    parked, cache = measured.parking.parked, measured.worker_cache
    growth = measured.rss_after_mb - measured.rss_before_mb
    result.figure(
        "idle.parked", "requests parked (pending confirmation), once per run", "requests", [parked]
    )
    result.figure(
        "idle.park.rate",
        "parking rate (submit → pending confirmation, all of them)",
        "requests/s",
        [measured.parking.rate],
        better=Better.HIGHER,
    )
    result.figure(
        "idle.worker.rss_before_mb", "worker RSS before parking", "MB", [measured.rss_before_mb]
    )
    result.figure(
        "idle.worker.rss_after_mb",
        f"worker RSS with {parked:,} parked",
        "MB",
        [measured.rss_after_mb],
    )
    result.figure(
        "idle.worker.growth_mb",
        f"worker RSS growth with {parked:,} parked",
        "MB",
        [growth],
        better=Better.LOWER,
    )
    result.figure(
        "idle.worker.per_parked_kb",
        "worker RSS growth per parked request",
        "KB",
        [growth * 1024 / parked if parked else 0.0],
        better=Better.LOWER,
    )
    result.figure(
        "idle.worker.per_cached_kb",
        f"worker RSS growth per cached workflow (at most {cache:,} cached)",
        "KB",
        [growth * 1024 / min(parked, cache) if parked and cache else 0.0],
        better=Better.LOWER,
    )
    if 0 < parked < TARGET_PARKED:
        projected, how = _projection(params, measured, growth)
        result.figure(
            "idle.worker.projected_mb",
            f"worker RSS growth projected to {TARGET_PARKED:,} parked ({how})",
            "MB",
            [projected],
            better=Better.LOWER,
        )


def growth_beyond_cache_kb(
    progress: list[ProgressSample], cache: int, in_flight: int
) -> float | None:
    """Worker RSS per further parked request once its workflow cache is full: the
    least-squares slope over the samples past it (None: parking never got that far)."""
    full = [
        (sample.parked, sample.worker_rss_mb * 1024)
        for sample in progress
        if sample.parked >= cache + in_flight and sample.worker_rss_mb is not None
    ]
    if len({parked for parked, _ in full}) < 2:
        return None
    parked, rss_kb = zip(*full, strict=True)
    return max(0.0, statistics.linear_regression(parked, rss_kb).slope)


def _projection(params: IdleParams, measured: Measured, growth_mb: float) -> tuple[float, str]:
    """The growth at the issue's 10,000 parked, from a run that parked fewer, and how."""
    parked = measured.parking.parked
    slope = growth_beyond_cache_kb(
        measured.parking.progress, measured.worker_cache, params.in_flight
    )
    if slope is not None:
        projected = growth_mb + slope * (TARGET_PARKED - parked) / 1024
        return projected, f"+{slope:.1f} KB per request measured past the full cache"
    # Parking never got past the cache: assume it fills at the same cost, then stops.
    projected = growth_mb / parked * min(TARGET_PARKED, measured.worker_cache)
    return projected, "the cache filled at the measured cost per workflow, nothing past it"


def _latency_figures(result: ScenarioResult, measured: Measured) -> None:
    for side, rounds in (("without", measured.without), ("with", measured.with_parked)):
        mixes = [latencies_ms(pooled_api_calls(samples)) for samples in rounds]
        for q in ("p50", "p99"):
            values = [getattr(mix, q) for mix in mixes]
            _latency_figure(result, "api", "reference mix", side, q, values)
        for kind, label in KINDS.items():
            values = [latencies_ms(samples[kind]).p99 for samples in rounds]
            _latency_figure(result, kind, label, side, "p99", values)
        # Its p50, steadier than a p99 of a few dozen calls, is the drift to read others by.
        values = [latencies_ms(samples[CONTROL]).p50 for samples in rounds]
        _latency_figure(result, CONTROL, KINDS[CONTROL], side, "p50", values)
    result.ratio(
        f"idle.{CONTROL}.p50_ratio",
        f"{CONTROL} p50 with / without",
        f"idle.{CONTROL}.with.p50_ms",
        f"idle.{CONTROL}.without.p50_ms",
        "the machine's own drift between the two sides, read on a steady p50",
    )
    for q in ("p50", "p99"):
        result.ratio(
            f"idle.api.{q}_ratio",
            f"reference mix {q} with / without parked requests",
            f"idle.api.with.{q}_ms",
            f"idle.api.without.{q}_ms",
            "what the parked requests cost every API call (round i after parking / round i before)",
        )
    for kind in KINDS:
        meaning = (
            "the machine's own drift between the two sides"
            if kind == CONTROL
            else "this kind of call with / without the parked requests"
        )
        result.ratio(
            f"idle.{kind}.p99_ratio",
            f"{kind} p99 with / without",
            f"idle.{kind}.with.p99_ms",
            f"idle.{kind}.without.p99_ms",
            meaning,
        )
    if measured.cold:
        cold = latencies_ms(measured.cold)
        for q in ("p50", "p99"):
            result.figure(
                f"idle.cold_read.{q}_ms",
                f"detail of a request parked long ago (evicted, replayed), {q}",
                "ms",
                [getattr(cold, q)],
                better=Better.LOWER,
            )


def _latency_figure(
    result: ScenarioResult, subject: str, label: str, side: str, q: str, values: list[float]
) -> None:
    """``idle.<subject>.<side>.<q>_ms``: a percentile of ``subject``'s calls on one side
    of the parking (``without`` or ``with``), a value per round."""
    result.figure(
        f"idle.{subject}.{side}.{q}_ms",
        f"{label} {side} parked requests, {q}",
        "ms",
        values,
        better=Better.LOWER,
    )


def _by_kind(rounds: list[Samples]) -> dict[str, dict[str, float]]:
    """p50 and p99 of each kind over all rounds of one side together."""
    timings_ms: dict[str, list[float]] = defaultdict(list)
    for samples in rounds:
        for kind, timings in samples.items():
            timings_ms[kind] += [elapsed / 1e6 for elapsed in timings]
    return {
        kind: {
            "calls": len(values),
            "p50": round(percentile(values, 50), 3),
            "p99": round(percentile(values, 99), 3),
        }
        for kind, values in timings_ms.items()
    }


def _targets(
    ctx: BenchContext, params: IdleParams, result: ScenarioResult, measured: Measured
) -> None:
    parked = measured.parking.parked
    projected = "idle.worker.projected_mb" in result.figures
    per_cached = result.median("idle.worker.per_cached_kb")
    result.target(
        f"{TARGET_PARKED:,} parked cost the worker ≤ {TARGET_WORKER_MB:g} MB"
        + (f" (projected from {parked:,})" if projected else ""),
        "idle.worker.projected_mb" if projected else "idle.worker.growth_mb",
        "<=",
        TARGET_WORKER_MB,
        applies=not ctx.quick,
        reason="--quick sizes",
        context=(
            f"measured +{number(result.median('idle.worker.growth_mb'))} MB with "
            f"{parked:,} parked; bounded by the workflow cache: at most {measured.worker_cache:,} "
            f"cached, ~{number(per_cached)} KB each"
        ),
    )
    kinds = {kind: result.median(f"idle.{kind}.p99_ratio") for kind in KINDS}
    worst = max((kind for kind in API_KINDS if kind != CONTROL), key=kinds.__getitem__)
    result.target(
        f"API p99 with {parked:,} parked ≤ {TARGET_P99_RATIO:g} x without"
        + (f" ({TARGET_PARKED:,} asked)" if parked < TARGET_PARKED else ""),
        "idle.api.p99_ratio",
        "<=",
        TARGET_P99_RATIO,
        applies=not ctx.quick,
        reason="--quick sizes",
        context=(
            f"p99 {number(result.median('idle.api.without.p99_ms'))} → "
            f"{number(result.median('idle.api.with.p99_ms'))} ms; most changed: {worst} "
            f"x{number(kinds[worst])}; a request's workflow query alone "
            f"x{number(kinds[LIVE_QUERY])}; control p99 x{number(kinds[CONTROL])}, "
            f"p50 x{number(result.median(f'idle.{CONTROL}.p50_ratio'))}"
        ),
    )


def _checks(params: IdleParams, result: ScenarioResult, measured: Measured) -> None:
    parking, failures = measured.parking, measured.parking.failures
    submitted = len(parking.submitted)
    result.check(
        "every submit was answered",
        not failures,
        f"{submitted:,} answered"
        + (f", {len(failures)} failed; first: {failures[0]}" if failures else ""),
    )
    expected = submitted + params.probes
    found = dict(measured.statuses)
    result.check(
        "every request is still pending confirmation at the end (database)",
        found == {PENDING: expected},
        f"expected {expected:,} {PENDING} ({params.probes} probes); found {found}",
    )
    running, closed = measured.visible
    result.check(
        "Temporal shows every parked workflow running, pending confirmation, none closed",
        running == submitted and closed == 0,
        f"{running:,} running and {PENDING} of {submitted:,}; {closed} closed",
    )


def _notes(params: IdleParams, measured: Measured) -> list[str]:
    parking = measured.parking
    shares = ", ".join(f"{name} {share:.2f}" for name, share in parking.cpu_core_shares.items())
    notes = [
        "Parked once per run: the memory figures and the parking rate have one value; the "
        "reference mix runs the same rounds on both sides of the parking (not interleaved, "
        "since parking cannot be undone cheaply), and the control call (a service type, which "
        "nothing parked touches) shows how far the machine drifted between the two sides.",
        "Each parked request is a real ConsultationWorkflow started by the API's own submit "
        "call (update-with-start), which persists the request, finds and holds its slot and "
        f"offers it to a consultant who never answers (confirmation timeout "
        f"{CONFIRMATION_TIMEOUT.days} days). The HTTP layer is left out of the parking on "
        "purpose: the API process serving the reference calls afterwards has not served "
        "the submits, so the difference is the parked requests' alone. The probes go "
        "through HTTP.",
        "Parking rate is bounded by CPU: every parked request costs the worker (one Python "
        "process, so about one core at most) several workflow tasks, its activities and their "
        "outbox events, and Temporal and PostgreSQL their share (cores busy while parking: "
        f"{shares}). Parking stops after {params.park_budget_s:.0f} s"
        + (
            " so that make bench stays within its 15 minutes"
            if params.park_budget_s <= DEFAULT_PARK_BUDGET_S
            else f" ({PARK_BUDGET_VARIABLE})"
        )
        + (
            f"; this run parked {parking.parked:,} of {params.parked:,}."
            if parking.parked < params.parked
            else "."
        ),
        f"Worker memory: RSS of the worker process (/proc VmRSS), after {SETTLE_S:g} s of "
        f"rest, minus the same before parking. The worker keeps at most "
        f"{measured.worker_cache:,} workflows in its cache (max_cached_workflows); a "
        "parked workflow evicted from it costs the worker nothing until a task or query "
        "for it replays its history, which is what the cold reads measure. So the growth "
        "stops once the cache is full, and the projection to 10,000 adds only the slope "
        "measured past that point.",
        "The reference mix's p99 is mostly its slowest kind, a request's detail (it waits "
        "for the workflow's query: the live_query kind is that query alone). A kind's p99 "
        f"is of {params.calls_per_kind} calls a round, nearly their maximum: read them "
        "against the control.",
    ]
    if measured.cold:
        notes.append(
            f"Cold reads: GET of {len(measured.cold)} of the first requests parked, one at a "
            "time; the API asks the workflow for its live state, which the worker must first "
            "rebuild from history (the request kind of the mix reads probes that are cached)."
        )
    return notes
