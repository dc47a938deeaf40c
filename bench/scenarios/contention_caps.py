"""contention_caps: 200 concurrent requests for consultants capped at 2 sessions a day.

Each round seeds 10 consultants with 5 free slots each (one service long, two hours
apart), caps every consultant at 2 sessions a day (``max_sessions_per_day``), and
200 learners submit at once, 20 per slot, each with its ``slot_id``. A driver per
consultant confirms whatever it is offered until the consultant has as many
sessions as the caps allow on the days their slots fall on. Every hold counts
towards the cap while it waits, so the drivers never see more offers than the cap
leaves room for.

The SQL checks afterwards count, per consultant and local day, the sessions and the
holds still held (none may exceed the cap), and look for overlapping sessions or
slots. Requests the caps refuse wait for another attempt or are rejected; neither
may ever produce a session.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from bench.booking_load import (
    REQUESTS,
    SERVICE_MINUTES,
    STEP_TIMEOUT_S,
    BookedFacts,
    Headers,
    Seeded,
    Tokens,
    booked_facts,
    check_no_overlaps,
    contention_rounds,
    http_client,
    seed_consultants,
    service_worker_command,
)
from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult
from bench.stack import Component, asyncpg_dsn
from bench.stats import latencies_ms
from booking.tokens import Role

DAILY_CAP = 2
SLOTS_PER_CONSULTANT = 5
SETTLE_S = 2.0  # after the last session: time for a wrong extra one to show up
BUSY_RETRIES = 20  # a submit answered 503 (the API's concurrency bound) is sent again

# Sessions not cancelled plus live holds, per consultant and day on their clock.
_DAY_LOADS = """
SELECT consultant, day, count(DISTINCT request) AS n FROM (
    SELECT s.consultant_user_id AS consultant, s.consultation_request_id AS request,
           (s.scheduled_start_time AT TIME ZONE p.time_zone)::date AS day
    FROM scheduled_sessions s
    JOIN consultant_profiles p ON p.consultant_user_id = s.consultant_user_id
    WHERE s.consultant_user_id = ANY($1::uuid[]) AND s.status NOT LIKE 'cancel%'
    UNION ALL
    SELECT a.consultant_user_id, a.held_by_request_id,
           ((a.start_time + make_interval(mins => a.buffer_before_minutes))
             AT TIME ZONE p.time_zone)::date
    FROM consultant_availability_slots a
    JOIN consultant_profiles p ON p.consultant_user_id = a.consultant_user_id
    WHERE a.consultant_user_id = ANY($1::uuid[]) AND a.status = 'held'
      AND (a.hold_expires_at IS NULL OR a.hold_expires_at > now())
) AS counted
GROUP BY consultant, day
"""


@dataclass(frozen=True)
class CapsParams:
    requests: int
    consultants: int

    @classmethod
    def for_run(cls, quick: bool) -> CapsParams:
        return cls(40, 4) if quick else cls(200, 10)


@dataclass
class RoundOutcome:
    seconds_to_all_booked: float
    submit_ns: list[int]
    statuses: Counter[int]
    allowed: int
    sessions: int
    sessions_with_join_url: int
    worst_day: int
    cap_violations: int
    session_overlaps: int
    slot_overlaps: int


def allowed_sessions(seeded: Seeded) -> dict[uuid.UUID, int]:
    """What the caps allow each consultant on the (UTC, their zone) days of their slots."""
    per_day: Counter[tuple[uuid.UUID, Any]] = Counter(
        (slot.consultant_id, slot.start.date()) for slot in seeded.slots
    )
    allowed: Counter[uuid.UUID] = Counter()
    for (consultant, _), slots in per_day.items():
        allowed[consultant] += min(slots, DAILY_CAP)
    return dict(allowed)


async def _cap_consultants(dsn: str, consultants: list[uuid.UUID]) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "UPDATE consultant_profiles SET max_sessions_per_day = $2 "
            "WHERE consultant_user_id = ANY($1::uuid[])",
            consultants,
            DAILY_CAP,
        )
    finally:
        await connection.close()


async def _day_loads(dsn: str, consultants: list[uuid.UUID]) -> list[int]:
    connection = await asyncpg.connect(dsn)
    try:
        return [row["n"] for row in await connection.fetch(_DAY_LOADS, consultants)]
    finally:
        await connection.close()


async def _with_join_urls(dsn: str, consultants: list[uuid.UUID]) -> BookedFacts:
    """The booked facts once every session has its join URL (or the step timed out)."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while True:
        facts = await booked_facts(dsn, consultants)
        if facts.sessions == facts.sessions_with_join_url or time.monotonic() > deadline:
            return facts
        await asyncio.sleep(0.05)


async def _submit(
    http: httpx.AsyncClient, learner: Headers, service_type_id: uuid.UUID, slot_id: uuid.UUID
) -> tuple[int, int]:
    """Submit as a client would: a 503 (the API's concurrency bound, with Retry-After)
    is sent again with the same Idempotency-Key. The final status, and the time."""
    body = {"service_type_id": str(service_type_id), "slot_id": str(slot_id)}
    headers = {**learner, "Idempotency-Key": str(uuid.uuid4())}
    began = time.perf_counter_ns()
    for _ in range(BUSY_RETRIES):
        response = await http.post(REQUESTS, json=body, headers=headers)
        if response.status_code != httpx.codes.SERVICE_UNAVAILABLE:
            break
        await asyncio.sleep(_retry_after(response))
    return response.status_code, time.perf_counter_ns() - began


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "0.2")), 2.0)
    except ValueError:
        return 0.2


async def _driver(http: httpx.AsyncClient, consultant: Headers, wanted: int) -> int:
    """Confirm what is offered until ``wanted`` confirmations booked; how many did."""
    deadline = time.monotonic() + STEP_TIMEOUT_S
    booked = 0
    while booked < wanted and time.monotonic() < deadline:
        response = await http.get(
            REQUESTS, params={"status": "pending_confirmation", "limit": 100}, headers=consultant
        )
        if response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
            await asyncio.sleep(_retry_after(response))
            continue
        response.raise_for_status()
        for item in response.json()["items"]:
            confirmed = await http.post(f"{REQUESTS}/{item['id']}/confirm", headers=consultant)
            if confirmed.status_code == httpx.codes.OK and confirmed.json()["session_id"]:
                booked += 1
        await asyncio.sleep(0.02)
    return booked


async def _round(
    ctx: BenchContext, params: CapsParams, tokens: Tokens, number_: int
) -> tuple[RoundOutcome, Seeded]:
    dsn = asyncpg_dsn(ctx.stack.database_url)
    seeded = await seed_consultants(
        dsn,
        label=f"{ctx.run_id} contention_caps {number_}",
        consultants=params.consultants,
        slots_per_consultant=SLOTS_PER_CONSULTANT,
        slot_minutes=SERVICE_MINUTES,
    )
    await _cap_consultants(dsn, seeded.consultant_ids)
    allowed = allowed_sessions(seeded)
    learners = [tokens.of(Role.LEARNER, uuid.uuid4()) for _ in range(params.requests)]
    slots = seeded.slots
    async with http_client(ctx.stack.api_url, params.requests + params.consultants * 2) as http:
        began = time.perf_counter()
        drivers = [
            asyncio.create_task(
                _driver(http, tokens.of(Role.CONSULTANT, consultant), allowed[consultant])
            )
            for consultant in seeded.consultant_ids
        ]
        submits = await asyncio.gather(
            *(
                _submit(http, learner, seeded.service_type_id, slots[n % len(slots)].id)
                for n, learner in enumerate(learners)
            )
        )
        await asyncio.gather(*drivers)
        facts = await _with_join_urls(dsn, seeded.consultant_ids)
        elapsed = time.perf_counter() - began
        await asyncio.sleep(SETTLE_S)
    facts = await booked_facts(dsn, seeded.consultant_ids)
    loads = await _day_loads(dsn, seeded.consultant_ids)
    outcome = RoundOutcome(
        seconds_to_all_booked=elapsed,
        submit_ns=[ns for _, ns in submits],
        statuses=Counter(code for code, _ in submits),
        allowed=sum(allowed.values()),
        sessions=facts.sessions,
        sessions_with_join_url=facts.sessions_with_join_url,
        worst_day=max(loads, default=0),
        cap_violations=sum(1 for load in loads if load > DAILY_CAP),
        session_overlaps=facts.session_overlaps,
        slot_overlaps=facts.slot_overlaps,
    )
    return outcome, seeded


@scenario(
    "contention_caps",
    needs={Component.API},
    summary="200 concurrent requests, 10 consultants capped at 2 a day: 0 cap violations",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = CapsParams.for_run(ctx.quick)
    result = ScenarioResult("contention_caps")
    _, worker_label = service_worker_command()
    result.config = {
        "requests_per_round": params.requests,
        "consultants": params.consultants,
        "slots_per_consultant": SLOTS_PER_CONSULTANT,
        "daily_cap": DAILY_CAP,
        "slot": f"{SERVICE_MINUTES} minutes, as long as the service, two hours apart",
        "submission": "all at once, each with a slot_id, round-robin over the slots; a 503 "
        "(the API's concurrency bound) is retried with the same Idempotency-Key",
        "drivers": "one per consultant: inbox poll every 20 ms, confirm at once",
        "worker": worker_label,
    }
    tokens = Tokens(lambda role, user: ctx.stack.auth_headers(role, user))
    figures: dict[str, list[float]] = defaultdict(list)

    def report(number_: int, outcome: RoundOutcome) -> None:
        submit = latencies_ms(outcome.submit_ns)
        figures["seconds"].append(outcome.seconds_to_all_booked)
        figures["submit.p99"].append(submit.p99)
        figures["sessions"].append(outcome.sessions)
        figures["violations"].append(outcome.cap_violations)
        ctx.say(
            f"contention_caps: round {number_}: {outcome.sessions} sessions "
            f"(caps allow {outcome.allowed}) in {outcome.seconds_to_all_booked:.2f} s; "
            f"busiest day {outcome.worst_day}; {outcome.cap_violations} cap violations; "
            f"submits {dict(outcome.statuses)}"
        )

    outcomes = await contention_rounds(
        ctx, "contention_caps", lambda number_: _round(ctx, params, tokens, number_), report
    )

    result.figure(
        "contention_caps.seconds_to_all_booked",
        "first submit → every session the caps allow confirmed",
        "s",
        figures["seconds"],
        better=Better.LOWER,
    )
    result.figure(
        "contention_caps.submit.p99_ms",
        f"submit under the burst of {params.requests}, p99",
        "ms",
        figures["submit.p99"],
        better=Better.LOWER,
    )
    result.figure("contention_caps.sessions", "sessions per round", "sessions", figures["sessions"])
    result.figure(
        "contention_caps.cap_violations",
        "consultant-days over their cap (sessions and live holds, SQL)",
        "days",
        figures["violations"],
        better=Better.LOWER,
    )
    result.target(
        f"0 consultant-days over a cap of {DAILY_CAP}",
        "contention_caps.cap_violations",
        "<=",
        0,
    )
    result.check(
        "every round books exactly what the caps allow, each with a join URL",
        all(o.sessions == o.allowed == o.sessions_with_join_url for o in outcomes),
        "; ".join(
            f"{o.sessions} of {o.allowed} ({o.sessions_with_join_url} with URL)" for o in outcomes
        ),
    )
    result.check(
        f"no consultant-day over {DAILY_CAP} (SQL)",
        all(o.cap_violations == 0 for o in outcomes),
        "; ".join(f"busiest day {o.worst_day}" for o in outcomes),
    )
    check_no_overlaps(result, outcomes)
    result.evidence["submit_statuses_per_round"] = [
        {str(code): count for code, count in o.statuses.items()} for o in outcomes
    ]
    return result
