"""``python -m bench [scenario ...] [--rounds N] [--quick]``: run, record, summarise.

Starts what the selected scenarios need (bench/stack.py), runs them one after the
other and, after each, writes ``<results-dir>/<scenario>.json`` and regenerates
``SUMMARY.md`` from every result file present. Exit status 1 when a scenario fails
or one of its checks does not hold; a missed performance target is reported, not
an error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench.registry import BenchContext, Scenario, load_scenarios
from bench.results import (
    DEFAULT_RESULTS_DIR,
    CpuTimes,
    ScenarioResult,
    cpu_usage_between,
    load_average,
    machine_facts,
    number,
    result_document,
    write_json,
    write_summary,
)
from bench.stack import BenchStack, Component, with_dependencies
from booking.devstack.errors import DevStackError

logger = logging.getLogger("bench")

DEFAULT_ROUNDS = 3
DEFAULT_QUICK_ROUNDS = 2
TIME_BUDGET_S = 15 * 60  # the whole of `make bench`, every scenario


def default_names(scenarios: dict[str, Scenario]) -> list[str]:
    """What ``make bench`` runs when no scenario is named."""
    return [name for name, scenario in scenarios.items() if scenario.by_default]


def parse_args(argv: Sequence[str] | None, scenarios: dict[str, Scenario]) -> argparse.Namespace:
    names = ", ".join(scenarios)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the booking service; results in bench/results/.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="scenario",
        help=f"what to run (default: {', '.join(default_names(scenarios))}; also: {names})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"rounds per figure (default {DEFAULT_ROUNDS}, {DEFAULT_QUICK_ROUNDS} with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes that prove the harness works; figures mean little",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS_DIR,
        help=f"where the JSON files and SUMMARY.md go (default {DEFAULT_RESULTS_DIR})",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--log-level", default="INFO", help="progress output (default INFO)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in scenarios]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {names}")
    if args.rounds is None:
        args.rounds = DEFAULT_QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for name in ("bench", "booking.devstack"):
        logging.getLogger(name).setLevel(level.upper())


def main(argv: Sequence[str] | None = None, scenarios: dict[str, Scenario] | None = None) -> int:
    """``scenarios`` replaces the registered ones (a benchmark outside ``make bench``,
    e.g. ``bench/rate_limit_cost.py``); the summary still lists every result file."""
    registered = load_scenarios()
    scenarios = scenarios or registered
    args = parse_args(argv, scenarios)
    if args.list:
        width = max(len(name) for name in scenarios)
        for scenario in scenarios.values():
            listed = ", ".join(sorted(with_dependencies(set(scenario.needs)))) or "nothing"
            only = "" if scenario.by_default else "; only when named"
            print(f"{scenario.name:<{width}} {scenario.summary} (needs {listed}{only})")
        return 0
    configure_logging(args.log_level)
    selected = [scenarios[name] for name in (args.scenarios or default_names(scenarios))]
    needs: set[Component] = set().union(*(scenario.needs for scenario in selected))
    run_id = uuid.uuid4().hex[:8]
    began = time.monotonic()
    logger.info(
        "bench %s: %s, %d rounds%s",
        run_id,
        " ".join(scenario.name for scenario in selected),
        args.rounds,
        " (quick)" if args.quick else "",
    )
    try:
        with _sigterm_as_interrupt(), BenchStack() as stack:
            stack.start(needs)
            order = [*registered, *scenarios]
            code = asyncio.run(_run_all(stack, selected, args, run_id, order))
    except DevStackError as error:
        logger.error("error: %s", error)
        return 1
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130
    elapsed = time.monotonic() - began
    logger.info("done in %.0f s; summary: %s", elapsed, args.results_dir / "SUMMARY.md")
    if elapsed > TIME_BUDGET_S and not args.scenarios:
        logger.warning("make bench took longer than its %d-minute budget", TIME_BUDGET_S // 60)
    return code


async def _run_all(
    stack: BenchStack,
    selected: list[Scenario],
    args: argparse.Namespace,
    run_id: str,
    order: list[str],
) -> int:
    machine = machine_facts()
    stack_facts = await stack.describe()
    context = BenchContext(stack=stack, rounds=args.rounds, quick=args.quick, run_id=run_id)
    failed: list[str] = []
    for scenario in selected:
        logger.info("== %s ==", scenario.name)
        cpu_before, load_before = CpuTimes.read(), load_average()
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        began = time.monotonic()
        try:
            result = await scenario.run(context)
        except Exception:
            logger.exception("scenario %s failed", scenario.name)
            stack.keep_work_dir = True
            failed.append(scenario.name)
            continue
        duration = time.monotonic() - began
        context.results[scenario.name] = result
        components = with_dependencies(set(scenario.needs))
        document = result_document(
            result,
            quick=args.quick,
            rounds=args.rounds,
            duration_s=duration,
            machine={**machine, "timestamp": started_at},
            stack={key: value for key, value in stack_facts.items() if key in components},
            conditions={
                "cpu": cpu_usage_between(cpu_before, CpuTimes.read()),
                "load_before": load_before,
                "load_after": load_average(),
            },
        )
        write_json(args.results_dir / f"{scenario.name}.json", document)
        write_summary(args.results_dir, order)
        _print_result(result, duration)
        if not result.ok:
            failed.append(scenario.name)
    if failed:
        logger.error("failed: %s", ", ".join(failed))
        return 1
    return 0


def _print_result(result: ScenarioResult, duration: float) -> None:
    lines = [f"{result.scenario} ({duration:.0f} s):"]
    for figure in result.figures.values():
        s = figure.spread
        lines.append(
            f"  {figure.label}: {number(s.median)} {figure.unit} "
            f"({number(s.minimum)} - {number(s.maximum)})"
        )
    for ratio in result.ratios.values():
        s = ratio.spread
        lines.append(
            f"  ratio {ratio.label}: {number(s.median)} ({number(s.minimum)} - {number(s.maximum)})"
        )
    for target in result.targets:
        verdict = {True: "met", False: "MISSED", None: "n/a"}[target.met]
        lines.append(
            f"  target {target.label}: {verdict} (median {number(target.median)}, "
            f"worst round {number(target.worst)})"
        )
    for check in result.checks:
        lines.append(f"  check {'ok' if check.ok else 'FAILED'}: {check.name} {check.detail}")
    print("\n".join(lines), flush=True)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the servers as Ctrl-C does, instead of leaving the scratch dir."""

    def interrupt(signum: int, frame: FrameType | None) -> Any:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
