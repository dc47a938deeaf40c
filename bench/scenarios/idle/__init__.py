"""idle: requests parked awaiting confirmation; worker memory and API latency with them.

The issue's idle case: 10,000 consultation requests, each a ``ConsultationWorkflow``
parked in ``pending_confirmation`` (a consultant was asked and never answers), should
cost the worker at most 100 MB and leave the API's p99 within 10 %. The scenario:

1. seeds consultants with free slots (``bench/booking_load.py``) under a service type
   whose confirmation timeout is a week, so no deadline or reminder fires during the
   run; a few *probe* requests are submitted through the API (HTTP) to consultants of
   their own: they are what the reference calls read;
2. without parked requests: a warm-up pass, then ``rounds`` rounds of the reference
   mix, one call at a time on one client: a request's detail (with its workflow's
   live state), a consultant's inbox, a learner's own requests, an operator's page of
   pending confirmations, an availability search, and a service type (the control,
   which nothing parked touches);
3. the worker's resident memory, then up to 10,000 requests are parked: the API's own
   submit call (``api.consultation_workflow.submit``, update-with-start) straight to
   Temporal, a fixed number in flight, each on a free slot of its own, until all are
   ``pending_confirmation`` in the database or the parking budget is spent;
4. after a few seconds' settling the worker's memory again, then the same warm-up and
   rounds of the reference mix, then detail reads of the requests parked first (long
   evicted from the worker's cache, so each read replays that workflow's history);
5. checks (every request still pending confirmation, in the database and in Temporal's
   visibility), then every parked workflow is terminated.

Parking happens once per run (it is the expensive part); the latency rounds are
repeated on both sides of it, and the control call shows how far the machine itself
drifted meanwhile.

``run`` here seeds the data, starts the worker, cleans up and reports;
``measure.py`` takes the measurements (steps 1 to 5) into a ``Measured``, which
``report.py`` turns into the result's figures, ratios, targets, checks and notes.
"""

from __future__ import annotations

import time

from bench.booking_load import (
    http_client,
    remove_seeded,
    seed_consultants,
    service_worker_command,
)
from bench.registry import BenchContext, scenario
from bench.results import ScenarioResult
from bench.scenarios.idle.measure import (
    CONFIRMATION_TIMEOUT,
    IdleParams,
    Measured,
    Probe,
    take_measurements,
    terminate,
    worker_cache_size,
)
from bench.scenarios.idle.report import report_measurements, run_config
from bench.stack import Component, asyncpg_dsn


@scenario(
    "idle",
    needs={Component.API},
    summary="10,000 requests parked awaiting confirmation: worker memory, API latency with them",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = IdleParams.for_run(ctx.quick)
    result = ScenarioResult("idle")
    dsn = asyncpg_dsn(ctx.stack.database_url)
    began = time.monotonic()
    probe_seed = await seed_consultants(
        dsn,
        label=f"{ctx.run_id} idle probes",
        consultants=params.probes,
        slots_per_consultant=1,
        confirmation_timeout=CONFIRMATION_TIMEOUT,
    )
    seeded = await seed_consultants(
        dsn,
        label=f"{ctx.run_id} idle",
        consultants=params.consultants,
        slots_per_consultant=params.slots_per_consultant,
        confirmation_timeout=CONFIRMATION_TIMEOUT,
    )
    worker_command, worker_label = service_worker_command()
    result.config = run_config(ctx, params, seeded, worker_label)
    worker = ctx.stack.start_python("idle worker", worker_command)
    client = await ctx.stack.temporal_client()
    measured = Measured(
        phases_s={"seed": time.monotonic() - began},
        worker_cache=worker_cache_size(ctx.stack.settings()),
    )
    probes: list[Probe] = []
    try:
        async with http_client(ctx.stack.api_url, params.probes + 2) as http:
            await take_measurements(
                ctx, params, seeded, probe_seed, worker, client, http, measured, probes
            )
    finally:
        cleanup = time.monotonic()
        ids = [probe.request_id for probe in probes] + [str(i) for i in measured.parking.started]
        ended = await terminate(client, iter(ids))
        ctx.stack.stop_child(worker)
        if not ctx.stack.owns_database:
            for seed in (probe_seed, seeded):
                await remove_seeded(dsn, seed)
        measured.phases_s["cleanup"] = time.monotonic() - cleanup
        ctx.say(f"idle: terminated {ended:,} workflows in {measured.phases_s['cleanup']:.0f} s")
    report_measurements(ctx, params, result, measured)
    return result
