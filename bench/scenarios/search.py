"""search: availability search at a million slots, alone and through the API.

Loads 1,000,000 slots over 5,000 consultants (bench/catalog.py), then each round
runs the same seeded mix of searches, one at a time, in two forms:

* every start (the search's default): each start on the service types' 15-minute
  grid in a week's window, ``db.availability.search.search_bookable_starts``;
* earliest fit, the reference: one item per free slot (``earliest_only=true``,
  ``search_bookable_times``), windows of 1 to 31 days;

and for each:

* the query alone, in a session of its own, as the route runs it (time of the call:
  BEGIN, ``SET LOCAL``, the SELECTs of the walk, the grid in Python);
* the same searches through ``GET /v1/availability/search`` (HTTP, JWT, the route);
* the API's reference: ``GET /v1/service-types/{id}``, the cheapest authenticated
  call (one primary-key read), so the HTTP/auth share of a search is visible;
* a sample of the mix with the index and, right after, without it: the index is
  dropped inside a transaction that is rolled back, so exactly that index is
  missing for the planner and it comes back untouched.

Windows, service types (30 to 90 minutes, common to rare specializations), an
extra specialization filter and single-consultant searches vary. EXPLAIN ANALYZE of
one search of each kind records the plan: the partial index
``ix_availability_slots_available_start`` walked in order, no sort.
"""

from __future__ import annotations

import gc
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from bench.catalog import (
    POLICY_DAILY_CAP,
    POLICY_TYPE,
    Catalog,
    ServiceTypeSpec,
    load_busy_time,
    load_catalog,
    remove_busy_time,
    remove_catalog,
    table_facts,
)
from bench.registry import BenchContext, scenario
from bench.results import Better, ScenarioResult, number
from bench.stack import Component, asyncpg_dsn
from bench.stats import latencies_ms, percentile
from booking.tokens import Role
from db.availability.search import (
    SearchCriteria,
    search_bookable_starts,
    search_bookable_times,
    search_statement,
)

SEARCH_PATH = "/v1/availability/search"
SEARCH_INDEX = "ix_availability_slots_available_start"
SLOTS_TABLE = "consultant_availability_slots"
PAGE_SIZE = 50  # the route's default page; it asks the query for one more
# The API limits each user's reads (20/s by default): the searches come from this many
# learners in turn, as real traffic would, so the limit never answers for the search.
USERS = 200
TARGET_P99_MS = 20.0
TARGET_SLOTS = 1_000_000
START_INTERVAL_MINUTES = 15  # the catalog's types have none: the service-wide default
STARTS_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class SearchParams:
    consultants: int
    slots_per_consultant: int
    searches: int
    sample: int

    @classmethod
    def for_run(cls, quick: bool) -> SearchParams:
        if quick:
            return cls(consultants=50, slots_per_consultant=200, searches=40, sample=4)
        return cls(consultants=5_000, slots_per_consultant=200, searches=500, sample=25)

    @property
    def slots(self) -> int:
        return self.consultants * self.slots_per_consultant


@dataclass(frozen=True)
class SearchCase:
    kind: str
    service_type: ServiceTypeSpec
    window_start: datetime
    window_end: datetime
    specialization: str | None = None
    consultant_id: uuid.UUID | None = None
    every_start: bool = False

    def query_params(self) -> dict[str, str]:
        params = {
            "service_type_id": str(self.service_type.id),
            "from": self.window_start.isoformat(),
            "to": self.window_end.isoformat(),
        }
        if not self.every_start:
            params["earliest_only"] = "true"
        if self.specialization is not None:
            params["specialization"] = self.specialization
        if self.consultant_id is not None:
            params["consultant_id"] = str(self.consultant_id)
        return params

    def criteria(self) -> SearchCriteria:
        """What the route hands the query for these parameters (first page).

        The windows start days ahead, so the route's "now plus minimum notice" never
        moves them and both paths run the very same query.
        """
        wanted = {s for s in (self.service_type.required_specialization, self.specialization) if s}
        return SearchCriteria(
            window_start=self.window_start,
            window_end=self.window_end,
            duration=timedelta(minutes=self.service_type.minutes),
            specializations=tuple(sorted(wanted)),
            consultant_id=self.consultant_id,
            limit=PAGE_SIZE + 1,
            start_interval_minutes=START_INTERVAL_MINUTES,
            service_type_id=self.service_type.id,
            buffer_before=timedelta(minutes=self.service_type.buffer_before_minutes),
            buffer_after=timedelta(minutes=self.service_type.buffer_after_minutes),
        )

    def walk_criteria(self) -> SearchCriteria:
        """The first query of the search's walk (what EXPLAIN looks at): the every-start
        search reads twice the page in its first batch."""
        criteria = self.criteria()
        return replace(criteria, limit=criteria.limit * (2 if self.every_start else 1))

    def every_start_case(self) -> SearchCase:
        """The same search for every start in a week from the same moment."""
        return replace(self, every_start=True, window_end=self.window_start + STARTS_WINDOW)

    def of_type(self, service_type: ServiceTypeSpec) -> SearchCase:
        """The same every-start search for sessions of ``service_type``, filtered by the
        specialization this case's own type requires."""
        specialization = self.specialization or self.service_type.required_specialization
        return replace(
            self.every_start_case(), service_type=service_type, specialization=specialization
        )

    def forms(self, catalog: Catalog) -> dict[str, SearchCase]:
        """The four forms each case is searched as, by name: earliest fit, every start,
        and every start of the 30-minute type without and with scheduling policies."""
        return {
            "earliest": self,
            "starts": self.every_start_case(),
            "plain": self.of_type(catalog.service_types["intro"]),
            "policies": self.of_type(catalog.service_types[POLICY_TYPE]),
        }


async def run_query(session: AsyncSession, case: SearchCase) -> list[tuple[str, str]]:
    """The search the route runs for ``case``: (slot id, start) of the first page."""
    if case.every_start:
        found = await search_bookable_starts(session, case.criteria())
    else:
        found = await search_bookable_times(session, case.criteria())
    return [(str(f.slot_id), f.start_time.isoformat()) for f in found[:PAGE_SIZE]]


# kind → (weight, service type key, extra specialization, one consultant)
KINDS: dict[str, tuple[int, str, str | None, bool]] = {
    "open": (3, "intro", None, False),
    "common_specialization": (3, "careers", None, False),
    "mid_specialization": (2, "finance", None, False),
    "rare_specialization_long": (1, "law", None, False),
    "extra_filter": (1, "intro", "design", False),
    "one_consultant": (1, "intro", None, True),
}
WINDOW_DAYS = (1, 3, 7, 14, 31)


def make_cases(catalog: Catalog, count: int, ctx: BenchContext) -> list[SearchCase]:
    rng = ctx.rng("search-cases")
    kinds = list(KINDS)
    weights = [KINDS[kind][0] for kind in kinds]
    consultants = catalog.consultant_ids
    cases = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        _, type_key, specialization, one = KINDS[kind]
        start = catalog.first_day + timedelta(
            days=rng.randrange(max(1, catalog.days - 7)), hours=rng.randrange(24)
        )
        cases.append(
            SearchCase(
                kind=kind,
                service_type=catalog.service_types[type_key],
                window_start=start,
                window_end=start + timedelta(days=rng.choice(WINDOW_DAYS)),
                specialization=specialization,
                consultant_id=rng.choice(consultants) if one else None,
            )
        )
    return cases


# -- EXPLAIN ANALYZE -----------------------------------------------------------------


class ExplainAnalyze(Executable, ClauseElement):
    """``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` of a statement with its parameters."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(ExplainAnalyze, "postgresql")
def _compile_explain_analyze(element: ExplainAnalyze, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + compiler.process(element.statement, **kw)


async def explain_analyze(session: AsyncSession, criteria: SearchCriteria) -> dict[str, Any]:
    """EXPLAIN ANALYZE of one query of a search's walk (give ``walk_criteria()``)."""
    # As search_bookable_times plans: with the actual values, never a generic plan.
    await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    query = search_statement(criteria)
    raw = (await session.execute(ExplainAnalyze(query.statement), query.params)).scalar_one()
    document = json.loads(raw) if isinstance(raw, str) else raw
    top: dict[str, Any] = document[0]
    return top


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def plan_summary(document: dict[str, Any]) -> dict[str, Any]:
    """The parts of an EXPLAIN ANALYZE that say how the search ran."""
    plan = document["Plan"]
    nodes = _nodes(plan)
    outline = []
    for node in nodes:
        line = node["Node Type"]
        if "Relation Name" in node:
            line += f" on {node['Relation Name']}"
        if "Index Name" in node:
            line += f" using {node['Index Name']}"
        rows = node.get("Actual Rows")
        loops = node.get("Actual Loops")
        if rows is not None:
            line += f" (rows {rows:g} x loops {loops})"
        outline.append(line)
    slot_scans = [node for node in nodes if node.get("Relation Name") == SLOTS_TABLE]
    return {
        "outline": outline,
        "slot_scans": [node["Node Type"] for node in slot_scans],
        "slot_indexes": [node.get("Index Name") for node in slot_scans],
        "sorts": any(node["Node Type"] in {"Sort", "Incremental Sort"} for node in nodes),
        "execution_ms": document.get("Execution Time"),
        "planning_ms": document.get("Planning Time"),
        "shared_hit_blocks": plan.get("Shared Hit Blocks"),
        "shared_read_blocks": plan.get("Shared Read Blocks"),
    }


def walks_search_index(summary: dict[str, Any]) -> bool:
    return (
        summary["slot_indexes"] == [SEARCH_INDEX]
        and summary["slot_scans"][0] in {"Index Scan", "Index Only Scan"}
        and not summary["sorts"]
    )


# -- measuring -----------------------------------------------------------------------


Sessions = async_sessionmaker[AsyncSession]


class StatementClock:
    """Time spent in the engine's statements (from the cursor events: the database's
    work, the round trip and the driver's decoding), and how many ran, since ``reset``:
    the rest of a search's time is its Python."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.ns = 0
        self.statements = 0
        self._began: int | None = None
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def reset(self) -> None:
        self.ns = 0
        self.statements = 0

    def _before(self, *_: Any) -> None:
        self._began = time.perf_counter_ns()

    def _after(self, *_: Any) -> None:
        if self._began is not None:
            self.ns += time.perf_counter_ns() - self._began
            self.statements += 1
            self._began = None


@dataclass(frozen=True)
class QueryTiming:
    elapsed_ns: int
    in_statements_ns: int
    statements: int


async def time_query_alone(
    sessions: Sessions, case: SearchCase, clock: StatementClock
) -> QueryTiming:
    async with sessions() as session:
        clock.reset()
        began = time.perf_counter_ns()
        await run_query(session, case)
        elapsed = time.perf_counter_ns() - began
        return QueryTiming(elapsed, clock.ns, clock.statements)


async def time_in_one_transaction(
    sessions: Sessions, cases: list[SearchCase], *, drop_index: bool
) -> tuple[list[int], dict[str, Any] | None]:
    """The searches in one transaction, optionally with the search index dropped in it.

    The transaction is rolled back, so a dropped index is back as it was (DROP INDEX
    is transactional in PostgreSQL; it holds an exclusive lock on the table meanwhile).
    Returns the timings and the plan of the first search.
    """
    samples = []
    async with sessions() as session:
        if drop_index:
            await session.execute(text(f"DROP INDEX {SEARCH_INDEX}"))
        for case in cases:
            began = time.perf_counter_ns()
            await run_query(session, case)
            samples.append(time.perf_counter_ns() - began)
        plan = (
            plan_summary(await explain_analyze(session, cases[0].walk_criteria()))
            if cases
            else None
        )
        await session.rollback()
    return samples, plan


Headers = dict[str, str]


async def time_get(
    http: httpx.AsyncClient, path: str, user: Headers, params: dict[str, str] | None = None
) -> tuple[int, httpx.Response]:
    began = time.perf_counter_ns()
    response = await http.get(path, params=params, headers=user)
    elapsed = time.perf_counter_ns() - began
    if response.status_code != httpx.codes.OK:
        raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return elapsed, response


@dataclass
class FormSamples:
    """One form of the search (earliest fit or every start) in one round."""

    query: list[int] = field(default_factory=list)
    query_in_statements: list[int] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    api: list[int] = field(default_factory=list)
    api_by_kind: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    full_pages: int = 0


FORMS = ("earliest", "starts", "plain", "policies", "busy")
# form → the prefix of its figures
FORM_PREFIX = {
    "earliest": "",
    "starts": "starts.",
    "plain": "plain.",
    "policies": "policies.",
    "busy": "busy.",
}
BUSY_INTERVALS = 100_000
"""Busy intervals from linked calendars (one calendar per consultant) in force for
the ``busy`` form: the every-start searches again, after the other forms' rounds."""


@dataclass
class RoundSamples:
    forms: dict[str, FormSamples] = field(
        default_factory=lambda: {name: FormSamples() for name in FORMS}
    )
    reference: list[int] = field(default_factory=list)


async def time_round(
    http: httpx.AsyncClient,
    sessions: Sessions,
    clock: StatementClock,
    cases: list[SearchCase],
    reference_path: str,
    users: list[Headers],
    catalog: Catalog,
    *,
    busy: bool = False,
) -> RoundSamples:
    """Each search alone, then through the API, in each of its forms, then the API's
    reference call (with ``busy``: the ``busy`` form alone, no reference).

    Interleaved one by one, so a burst of noise on the machine falls on all of them
    alike and their ratios stay meaningful.
    """
    samples = RoundSamples()
    for index, first in enumerate(cases):
        user = users[index % len(users)]
        forms = {"busy": first.every_start_case()} if busy else first.forms(catalog)
        for name, case in forms.items():
            form = samples.forms[name]
            timing = await time_query_alone(sessions, case, clock)
            form.query.append(timing.elapsed_ns)
            form.query_in_statements.append(timing.in_statements_ns)
            form.statements.append(timing.statements)
            elapsed, response = await time_get(http, SEARCH_PATH, user, case.query_params())
            form.api.append(elapsed)
            form.api_by_kind[case.kind].append(elapsed)
            if response.json()["next_cursor"] is not None:
                form.full_pages += 1
        if not busy:
            samples.reference.append((await time_get(http, reference_path, user))[0])
    return samples


async def compare_paths(
    http: httpx.AsyncClient,
    sessions: Sessions,
    cases: list[SearchCase],
    users: list[Headers],
    catalog: Catalog,
    *,
    busy: bool = False,
) -> list[str]:
    """Cases where the API and the query alone disagree (there should be none)."""
    mismatches = []
    both = [
        form
        for case in cases
        for form in ([case.every_start_case()] if busy else case.forms(catalog).values())
    ]
    for index, case in enumerate(both):
        user = users[index % len(users)]
        _, response = await time_get(http, SEARCH_PATH, user, case.query_params())
        from_api = [
            (item["slot_id"], datetime.fromisoformat(item["start_time"]).isoformat())
            for item in response.json()["items"]
        ]
        async with sessions() as session:
            from_query = await run_query(session, case)
        if from_api != from_query:
            mismatches.append(f"{case.kind} {case.query_params()}")
    return mismatches


# -- the scenario --------------------------------------------------------------------


def record_forms(
    samples: RoundSamples,
    figures: dict[str, list[float]],
    kind_samples: dict[str, dict[str, list[int]]],
    full_pages: dict[str, int],
) -> list[str]:
    """Add one round's percentiles of each form it measured to ``figures``; the round's
    line for the log."""
    line = []
    for name, form in samples.forms.items():
        if not form.api:
            continue
        prefix = FORM_PREFIX[name]
        query, api = latencies_ms(form.query), latencies_ms(form.api)
        full_pages[name] += form.full_pages
        for kind, timings in form.api_by_kind.items():
            kind_samples[name][kind] += timings
        figures[f"{prefix}query.p50"].append(query.p50)
        count = len(form.query)
        figures[f"{prefix}query.mean"].append(sum(form.query) / count / 1e6)
        figures[f"{prefix}query.in_statements.mean"].append(
            sum(form.query_in_statements) / count / 1e6
        )
        figures[f"{prefix}query.statements"].append(sum(form.statements) / count)
        figures[f"{prefix}query.p99"].append(query.p99)
        figures[f"{prefix}api.p50"].append(api.p50)
        figures[f"{prefix}api.p95"].append(api.p95)
        figures[f"{prefix}api.p99"].append(api.p99)
        line.append(
            f"{name}: query p50 {query.p50:.2f} p99 {query.p99:.2f} ms, "
            f"API p50 {api.p50:.2f} p99 {api.p99:.2f} ms"
        )
    return line


async def _measure_busy(
    ctx: BenchContext,
    catalog: Catalog,
    http: httpx.AsyncClient,
    sessions: Sessions,
    clock: StatementClock,
    cases: list[SearchCase],
    users: list[Headers],
    figures: dict[str, list[float]],
    kind_samples: dict[str, dict[str, list[int]]],
    full_pages: dict[str, int],
) -> dict[str, Any]:
    """The every-start searches again with busy time in force: a calendar linked to
    every consultant, ``BUSY_INTERVALS`` busy intervals over them; unlinked after."""
    dsn = asyncpg_dsn(ctx.stack.database_url)
    intervals = BUSY_INTERVALS if catalog.slots >= TARGET_SLOTS else BUSY_INTERVALS // 100
    ctx.say(f"search: linking a calendar to every consultant with {intervals:,} busy intervals")
    load_seconds = await load_busy_time(dsn, catalog, intervals)
    try:
        mismatches = await compare_paths(http, sessions, cases, users, catalog, busy=True)
        overlapping = await _starts_meeting_busy_time(sessions, cases)
        await time_round(http, sessions, clock, cases, "", users, catalog, busy=True)
        gc.collect()
        gc.freeze()
        for round_number in ctx.round_numbers():
            samples = await time_round(http, sessions, clock, cases, "", users, catalog, busy=True)
            line = record_forms(samples, figures, kind_samples, full_pages)
            ctx.say(f"search: busy round {round_number}: {'; '.join(line)}")
        gc.unfreeze()
        async with sessions() as session:
            stored = await session.scalar(text("SELECT count(*) FROM consultant_busy_intervals"))
    finally:
        await remove_busy_time(dsn, catalog)
    return {
        "intervals": stored,
        "load_seconds": round(load_seconds, 1),
        "api_query_mismatches": mismatches,
        "starts_meeting_busy_time": overlapping,
    }


async def _starts_meeting_busy_time(sessions: Sessions, cases: list[SearchCase]) -> int:
    """How many starts the every-start searches offer whose session meets busy time
    (checked by SQL over what the searches returned: there must be none)."""
    slots: list[uuid.UUID] = []
    starts: list[datetime] = []
    lengths: list[int] = []
    for case in cases:
        every_start = case.every_start_case()
        async with sessions() as session:
            for slot_id, start in await run_query(session, every_start):
                slots.append(uuid.UUID(slot_id))
                starts.append(datetime.fromisoformat(start))
                lengths.append(every_start.service_type.minutes)
    async with sessions() as session:
        found = await session.scalar(_MEETING_BUSY_TIME, {"s": slots, "t": starts, "m": lengths})
    return int(found or 0)


_MEETING_BUSY_TIME = text(
    """
    SELECT count(*)
      FROM unnest(CAST(:s AS uuid[]), CAST(:t AS timestamptz[]), CAST(:m AS int[]))
           AS offered(slot_id, start_time, minutes)
      JOIN consultant_availability_slots slot ON slot.id = offered.slot_id
      JOIN consultant_busy_intervals busy
        ON busy.consultant_user_id = slot.consultant_user_id
       AND tstzrange(busy.start_time, busy.end_time) && tstzrange(
             offered.start_time, offered.start_time + offered.minutes * interval '1 minute')
    """
)


@scenario(
    "search",
    needs={Component.API},
    summary="availability search at 1,000,000 slots: alone, through the API, without index",
)
async def run(ctx: BenchContext) -> ScenarioResult:
    params = SearchParams.for_run(ctx.quick)
    result = ScenarioResult("search")
    dsn = asyncpg_dsn(ctx.stack.database_url)
    ctx.say(f"search: loading {params.slots:,} slots over {params.consultants:,} consultants")
    catalog = await load_catalog(
        dsn,
        run_id=ctx.run_id,
        consultants=params.consultants,
        slots_per_consultant=params.slots_per_consultant,
        rng=ctx.rng("search-catalog"),
    )
    ctx.say(f"search: loaded in {catalog.load_seconds:.1f} s")
    engine = create_async_engine(ctx.stack.database_url, pool_size=2, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    clock = StatementClock(engine)
    try:
        async with ctx.stack.api_client() as http:
            await _measure(ctx, params, catalog, http, sessions, clock, result)
        result.evidence["table"] = await table_facts(dsn)
    finally:
        await engine.dispose()
        if not ctx.stack.owns_database:
            ctx.say("search: removing the benchmark catalog from the external database")
            await remove_catalog(dsn, catalog)
    return result


async def _measure(
    ctx: BenchContext,
    params: SearchParams,
    catalog: Catalog,
    http: httpx.AsyncClient,
    sessions: Sessions,
    clock: StatementClock,
    result: ScenarioResult,
) -> None:
    cases = make_cases(catalog, params.searches, ctx)
    sample = cases[: params.sample]
    reference_path = f"/v1/service-types/{catalog.service_types['intro'].id}"
    result.config = {
        "consultants": params.consultants,
        "slots": catalog.slots,
        "days": catalog.days,
        "searches_per_round": params.searches,
        "no_index_sample_per_round": params.sample,
        "kinds": {kind: weight for kind, (weight, *_) in KINDS.items()},
        "window_days": list(WINDOW_DAYS),
        "every_start_window_days": STARTS_WINDOW.days,
        "start_interval_minutes": START_INTERVAL_MINUTES,
        "page_size": PAGE_SIZE,
        "api_reference": "GET /v1/service-types/{id}",
        "policies": {
            "buffer_minutes_each_side": catalog.service_types[POLICY_TYPE].buffer_before_minutes,
            "daily_cap_per_consultant": POLICY_DAILY_CAP,
            "sessions_of_the_type": "one per booked slot (20 % of slots)",
        },
        "learners": USERS,
        "load_seconds": round(catalog.load_seconds, 1),
    }

    ctx.say("search: warming up and comparing the API with the query alone")
    users = [ctx.stack.auth_headers(Role.LEARNER) for _ in range(USERS)]
    mismatches = await compare_paths(http, sessions, cases, users, catalog)
    await time_round(http, sessions, clock, cases, reference_path, users, catalog)
    # The client's own garbage collector must not pause inside a timed request.
    gc.collect()
    gc.freeze()

    figures: dict[str, list[float]] = defaultdict(list)
    kind_samples: dict[str, dict[str, list[int]]] = {name: defaultdict(list) for name in FORMS}
    full_pages = dict.fromkeys(FORMS, 0)
    for round_number in ctx.round_numbers():
        samples = await time_round(http, sessions, clock, cases, reference_path, users, catalog)
        reference = latencies_ms(samples.reference)
        indexed, _ = await time_in_one_transaction(sessions, sample, drop_index=False)
        without, _ = await time_in_one_transaction(sessions, sample, drop_index=True)
        line = record_forms(samples, figures, kind_samples, full_pages)
        figures["reference.p50"].append(reference.p50)
        figures["reference.p99"].append(reference.p99)
        figures["sample.indexed.p50"].append(latencies_ms(indexed).p50)
        figures["sample.no_index.p50"].append(latencies_ms(without).p50)
        ctx.say(
            f"search: round {round_number}: {'; '.join(line)}; reference call p99 "
            f"{reference.p99:.2f} ms; sample {figures['sample.indexed.p50'][-1]:.2f} ms with "
            f"the index, {figures['sample.no_index.p50'][-1]:.1f} ms without"
        )
    gc.unfreeze()
    busy_evidence = await _measure_busy(
        ctx, catalog, http, sessions, clock, cases, users, figures, kind_samples, full_pages
    )

    ctx.say("search: EXPLAIN ANALYZE of each kind")
    plans: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        first = next((case for case in cases if case.kind == kind), None)
        if first is None:
            continue
        async with sessions() as session:
            plans[kind] = plan_summary(await explain_analyze(session, first.walk_criteria()))
        async with sessions() as session:
            plans[f"{kind} (every start)"] = plan_summary(
                await explain_analyze(session, first.every_start_case().walk_criteria())
            )
    typical = [next(case for case in cases if case.kind != "one_consultant")]
    _, no_index_plan = await time_in_one_transaction(sessions, typical, drop_index=True)

    n = params.searches
    size = len(sample)
    week = f"every start, {STARTS_WINDOW.days}-day window"
    # Each form as its figures' labels name it.
    described = {
        "earliest": "earliest fit",
        "starts": week,
        "plain": f"{week}, 30-minute type, no policies",
        "policies": f"{week}, same type with buffers and caps",
        "busy": f"{week}, {BUSY_INTERVALS:,} busy intervals",
    }
    for key, label in (
        ("query.p50", f"{described['earliest']}: query alone, p50"),
        ("query.p99", f"{described['earliest']}: query alone, p99"),
        ("api.p50", f"{described['earliest']}: through the API, p50"),
        ("api.p95", f"{described['earliest']}: through the API, p95"),
        ("api.p99", f"{described['earliest']}: through the API, p99"),
        ("starts.query.p50", f"{described['starts']}: query alone, p50"),
        ("starts.query.p99", f"{described['starts']}: query alone, p99"),
        ("starts.api.p50", f"{described['starts']}: through the API, p50"),
        ("starts.api.p95", f"{described['starts']}: through the API, p95"),
        ("starts.api.p99", f"{described['starts']}: through the API, p99"),
        ("plain.query.p99", f"{described['plain']}: query alone, p99"),
        ("plain.api.p50", f"{described['plain']}: through the API, p50"),
        ("plain.api.p99", f"{described['plain']}: through the API, p99"),
        ("policies.query.p99", f"{described['policies']}: query alone, p99"),
        ("policies.api.p50", f"{described['policies']}: through the API, p50"),
        ("policies.api.p99", f"{described['policies']}: through the API, p99"),
        ("busy.query.p99", f"{described['busy']}: query alone, p99"),
        ("busy.api.p50", f"{described['busy']}: through the API, p50"),
        ("busy.api.p99", f"{described['busy']}: through the API, p99"),
        ("reference.p50", "API reference call (GET a service type), p50"),
        ("reference.p99", "API reference call (GET a service type), p99"),
        ("sample.indexed.p50", f"sample of {size} searches in one transaction, p50"),
        ("sample.no_index.p50", f"same {size} searches without the index, p50"),
    ):
        result.figure(f"search.{key}_ms", label, "ms", figures[key], better=Better.LOWER)
    # Where the query alone spends its time: in its statements (PostgreSQL, the round
    # trips, the driver) or in the search's own Python (the grid, the walk, the caps).
    for form, name in described.items():
        prefix = FORM_PREFIX[form]
        if not figures[f"{prefix}query.mean"]:
            continue
        result.figure(
            f"search.{prefix}query.mean_ms",
            f"{name}: query alone, mean",
            "ms",
            figures[f"{prefix}query.mean"],
            better=Better.LOWER,
        )
        result.figure(
            f"search.{prefix}query.in_statements.mean_ms",
            f"{name}: of which in its SQL statements (database, round trips, driver)",
            "ms",
            figures[f"{prefix}query.in_statements.mean"],
            better=Better.LOWER,
        )
        result.figure(
            f"search.{prefix}query.statements",
            f"{name}: SQL statements per search",
            "statements",
            figures[f"{prefix}query.statements"],
            better=Better.LOWER,
        )
    result.ratio(
        "search.index_speedup",
        "without the index / with it (same searches)",
        "search.sample.no_index.p50_ms",
        "search.sample.indexed.p50_ms",
        "how many times slower the searches are without the partial index",
    )
    result.ratio(
        "search.starts_over_earliest.p99",
        "every-start API p99 / earliest-fit API p99",
        "search.starts.api.p99_ms",
        "search.api.p99_ms",
        "what returning every start on the grid costs against one item per slot",
    )
    result.ratio(
        "search.policies_over_plain.p99",
        "with buffers and caps / without, API p99",
        "search.policies.api.p99_ms",
        "search.plain.api.p99_ms",
        "what the scheduling policies (buffers, a cap counted for every consultant) cost",
    )
    result.ratio(
        "search.busy_over_starts.p99",
        "with busy time / without, every-start API p99",
        "search.busy.api.p99_ms",
        "search.starts.api.p99_ms",
        "what reading the consultants' busy time (a calendar each) costs the search",
    )
    result.ratio(
        "search.api_over_query.p99",
        "every-start API p99 / query-alone p99",
        "search.starts.api.p99_ms",
        "search.starts.query.p99_ms",
        "what HTTP, the token and the route add around the query",
    )
    result.ratio(
        "search.api_over_reference.p99",
        "every-start p99 / reference call p99",
        "search.starts.api.p99_ms",
        "search.reference.p99_ms",
        "a search against the cheapest authenticated call of the same API",
    )

    def median(key: str) -> str:
        return number(result.figures[key].spread.median)

    result.target(
        f"every-start search p99 ≤ {TARGET_P99_MS:g} ms at one million slots "
        f"({STARTS_WINDOW.days}-day window, {START_INTERVAL_MINUTES}-minute step)",
        "search.starts.api.p99_ms",
        "<=",
        TARGET_P99_MS,
        applies=catalog.slots >= TARGET_SLOTS,
        reason=f"only {catalog.slots:,} slots (--quick)",
        context=(
            f"earliest-fit API p99 {median('search.api.p99_ms')} ms, query alone p99 "
            f"{median('search.starts.query.p99_ms')} ms, API reference call p99 "
            f"{median('search.reference.p99_ms')} ms"
        ),
    )
    result.target(
        f"every-start search p99 with buffers and caps in force ≤ {TARGET_P99_MS:g} ms at "
        "one million slots",
        "search.policies.api.p99_ms",
        "<=",
        TARGET_P99_MS,
        applies=catalog.slots >= TARGET_SLOTS,
        reason=f"only {catalog.slots:,} slots (--quick)",
        context=(
            f"the same searches without policies p99 {median('search.plain.api.p99_ms')} ms, "
            f"query alone with them p99 {median('search.policies.query.p99_ms')} ms"
        ),
    )
    result.target(
        f"every-start search p99 with {BUSY_INTERVALS:,} busy intervals ≤ {TARGET_P99_MS:g} ms "
        "at one million slots",
        "search.busy.api.p99_ms",
        "<=",
        TARGET_P99_MS,
        applies=catalog.slots >= TARGET_SLOTS,
        reason=f"only {catalog.slots:,} slots (--quick)",
        context=(
            f"the same searches without busy time p99 {median('search.starts.api.p99_ms')} ms, "
            f"query alone with it p99 {median('search.busy.query.p99_ms')} ms"
        ),
    )
    result.target(
        f"earliest-fit search p99 ≤ {TARGET_P99_MS:g} ms at one million slots",
        "search.api.p99_ms",
        "<=",
        TARGET_P99_MS,
        applies=catalog.slots >= TARGET_SLOTS,
        reason=f"only {catalog.slots:,} slots (--quick)",
        context=(
            f"query alone p99 {median('search.query.p99_ms')} ms, API reference call p99 "
            f"{median('search.reference.p99_ms')} ms"
        ),
    )

    for kind, summary in plans.items():
        if kind.startswith("one_consultant"):
            continue  # the planner may rightly start from that consultant's own index
        if ctx.quick:
            # A toy table may be hashed and sorted instead; only the index is required.
            result.check(
                f"EXPLAIN: {kind} reads the slots through {SEARCH_INDEX}",
                summary["slot_indexes"] == [SEARCH_INDEX],
                "; ".join(summary["outline"][:4]),
            )
            continue
        result.check(
            f"EXPLAIN: {kind} walks {SEARCH_INDEX} in order, no sort",
            walks_search_index(summary),
            "; ".join(summary["outline"][:4]),
        )
    mismatches += busy_evidence["api_query_mismatches"]
    compared = len(FORMS) * len(cases)  # the four forms, and every start with busy time
    result.check(
        "the API returns exactly what the query alone returns",
        not mismatches,
        f"{compared - len(mismatches)} of {compared} searches agree"
        + (f"; first mismatch: {mismatches[0]}" if mismatches else ""),
    )
    result.check(
        "no start offered with busy time in force meets a busy interval (SQL over the results)",
        busy_evidence["starts_meeting_busy_time"] == 0,
        f"{busy_evidence['starts_meeting_busy_time']} offered starts meet busy time; "
        f"{busy_evidence['intervals']:,} intervals stored in {busy_evidence['load_seconds']} s",
    )
    per_kind = {
        name: {
            kind: {
                "searches": len(timings),
                "p50_ms": round(percentile([t / 1e6 for t in timings], 50), 3),
                "p99_ms": round(percentile([t / 1e6 for t in timings], 99), 3),
            }
            for kind, timings in by_kind.items()
        }
        for name, by_kind in kind_samples.items()
    }
    result.evidence.update(
        {
            "busy_time": busy_evidence,
            "plans": plans,
            "plan_without_index": no_index_plan,
            "api_by_kind_all_rounds": per_kind,
            "full_pages_share": {
                name: round(pages / (n * ctx.rounds), 3) for name, pages in full_pages.items()
            },
        }
    )
    result.notes.append(
        "Every search runs four times per round: as every start on the 15-minute grid in a "
        "week from the case's window start, and as the earliest-fit search (one item per "
        "slot, the case's own window) as its reference; then as every start of a "
        "30-minute type without policies and of the same type with 10-minute buffers and "
        "a cap of one session a day per consultant (its reference). Reference for the query: the "
        "earliest-fit searches with the partial index dropped in a "
        "rolled-back transaction, measured in the same round. Reference for the API: "
        "GET /v1/service-types/{id} on the same connection, same round. Searches run one "
        "at a time (latency without queueing)."
    )
