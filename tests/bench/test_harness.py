"""The benchmark harness: its arithmetic, and tiny real runs of every scenario."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.results import ScenarioResult, render_summary, write_json, write_summary
from bench.stats import latencies_ms, percentile, spread
from tests.support.bench_runs import run_quick

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5], 99) == 5
    assert percentile(list(range(101)), 99) == 99
    assert percentile([3, 1, 2], 0) == 1
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_spread_and_latencies() -> None:
    s = spread([10.0, 12.0, 11.0])
    assert (s.median, s.minimum, s.maximum, s.count) == (11.0, 10.0, 12.0, 3)
    assert s.relative_range == pytest.approx(2 / 11)
    lat = latencies_ms([1_000_000, 2_000_000, 3_000_000])
    assert (lat.p50, lat.maximum, lat.count) == (2.0, 3.0, 3)


def test_ratios_are_taken_round_by_round_and_targets_on_the_median() -> None:
    result = ScenarioResult("demo")
    result.figure("demo.work", "work", "ops/s", [30.0, 20.0, 33.0])
    result.figure("demo.floor", "floor", "ops/s", [90.0, 60.0, 100.0])
    ratio = result.ratio("demo.share", "work / floor", "demo.work", "demo.floor", "share")
    assert ratio.rounds == pytest.approx([1 / 3, 1 / 3, 0.33])
    assert result.median("demo.work") == 30.0
    assert result.median("demo.share") == pytest.approx(1 / 3)
    target = result.target("at least a third", "demo.share", ">=", 0.3)
    assert target.met is True
    assert target.worst == pytest.approx(0.33)
    missed = result.target("at most 25 ops/s", "demo.work", "<=", 25.0)
    assert missed.met is False
    skipped = result.target("n/a", "demo.work", "<=", 1.0, applies=False, reason="quick")
    assert skipped.met is None
    with pytest.raises(KeyError):
        result.target("unknown", "demo.nothing", "<=", 1.0)


def test_summary_is_regenerated_from_the_json_files(tmp_path: Path) -> None:
    result = ScenarioResult("demo")
    result.figure("demo.p99", "p99", "ms", [5.0, 7.0])
    result.figure("demo.floor", "floor p99", "ms", [2.5, 3.5])
    result.ratio("demo.over_floor", "p99 / floor", "demo.p99", "demo.floor", "what it adds")
    result.check("it worked", True)
    document: dict[str, Any] = {
        "schema_version": 1,
        "scenario": "demo",
        "quick": False,
        "rounds": 2,
        "duration_s": 1.0,
        "machine": {"usable_cpus": 2, "git": {"commit": "abc", "dirty": False}},
        "stack": {},
        "conditions": {},
        **result.to_json(),
    }
    write_json(tmp_path / "demo.json", document)
    (tmp_path / "other.json").write_text('{"not": "a result"}')
    summary = write_summary(tmp_path).read_text()
    assert "## demo" in summary
    assert "| p99 | 6.00 | 5.00 - 7.00 | ±17 % | ms |" in summary
    assert "| Ratio (same run) | Median | Range | Meaning |" in summary
    assert "| p99 / floor | 2.00 | 2.00 - 2.00 | what it adds |" in summary
    assert "- ok: it worked" in summary
    assert "No results yet" in render_summary([])


def test_unknown_scenarios_are_refused() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "no-such-scenario"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 2
    assert "unknown scenario" in run.stderr


def test_quick_floor_and_search_on_a_fresh_stack(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run_quick(["floor", "search"], results, rounds=2, timeout=180)

    floor = json.loads((results / "floor.json").read_text())
    search = json.loads((results / "search.json").read_text())
    for document in (floor, search):
        assert document["schema_version"] == 1
        assert document["quick"] is True
        assert document["ok"] is True
        assert all(check["ok"] for check in document["checks"]), document["checks"]
        machine = document["machine"]
        assert machine["cpu_count"] >= 1
        assert machine["python"]
        assert machine["packages"]["temporalio"]
        assert "commit" in machine["git"]
        for figure in document["figures"].values():
            assert len(figure["rounds"]) == 2
            assert figure["min"] <= figure["median"] <= figure["max"]
        assert document["ratios"]

    assert floor["figures"]["floor.empty.rate"]["median"] > 0
    assert floor["ratios"]["floor.five_noops_over_empty.rate"]["median"] > 0
    assert floor["evidence"]["history_events"] == {"empty": 5, "five_noops": 35}
    assert search["config"]["slots"] == 10_000
    assert search["ratios"]["search.index_speedup"]["median"] > 0
    # 10,000 slots cannot judge the million-slot targets (every start, with policies,
    # with busy time, earliest fit).
    assert [target["applies"] for target in search["targets"]] == [False] * 4
    assert search["ratios"]["search.starts_over_earliest.p99"]["median"] > 0
    assert search["ratios"]["search.policies_over_plain.p99"]["median"] > 0
    assert search["ratios"]["search.busy_over_starts.p99"]["median"] > 0
    busy = search["evidence"]["busy_time"]
    assert busy["intervals"] == 1_000
    assert busy["starts_meeting_busy_time"] == 0
    for kind in ("open", "open (every start)"):
        assert search["evidence"]["plans"][kind]["slot_indexes"] == [
            "ix_availability_slots_available_start"
        ]

    summary = (results / "SUMMARY.md").read_text()
    assert "## floor (quick)" in summary
    assert "## search (quick)" in summary
    assert summary.index("## floor") < summary.index("## search")


def test_quick_booking_contention_and_idle_on_a_fresh_stack(tmp_path: Path) -> None:
    """One quick round of each: whole bookings through the API with the real worker,
    and a hundred requests parked awaiting confirmation."""
    results = tmp_path / "results"
    run_quick(["booking", "contention", "idle"], results, rounds=1, timeout=240)

    booking = json.loads((results / "booking.json").read_text())
    contention = json.loads((results / "contention.json").read_text())
    idle = json.loads((results / "idle.json").read_text())
    for document in (booking, contention, idle):
        assert document["quick"] is True
        assert document["ok"] is True
        assert all(check["ok"] for check in document["checks"]), document["checks"]
        assert document["ratios"]
    assert booking["figures"]["booking.peak.rate"]["median"] > 0
    assert booking["figures"]["booking.half.ready.p99_ms"]["median"] > 0
    targets = {target["subject"]: target for target in booking["targets"]}
    assert targets["booking.rate_over_empty"]["applies"] is False  # --quick
    assert targets["booking.history_events"]["met"] is True
    assert contention["figures"]["contention.sessions"]["rounds"] == [4.0]
    assert contention["evidence"]["submit_statuses_per_round"]
    assert idle["figures"]["idle.parked"]["rounds"] == [100.0]
    assert idle["figures"]["idle.park.rate"]["median"] > 0
    assert idle["figures"]["idle.worker.growth_mb"]["median"] > 0  # a hundred cached workflows
    assert len(idle["figures"]["idle.api.with.p99_ms"]["rounds"]) == 1
    assert idle["ratios"]["idle.api.p99_ratio"]["median"] > 0
    assert all(target["applies"] is False for target in idle["targets"])  # --quick
    assert idle["evidence"]["parking_progress"][-1]["parked"] == 100
    summary = (results / "SUMMARY.md").read_text()
    assert "## booking (quick)" in summary
    assert "## contention (quick)" in summary
    assert summary.index("## contention") < summary.index("## idle (quick)")


def test_quick_workflow_load_compares_the_three_setups(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run_quick(["workflow_load"], results, rounds=1, timeout=120)
    document = json.loads((results / "workflow_load.json").read_text())
    figures = document["figures"]
    for setup in ("source", "bytecode", "passthrough"):
        assert figures[f"workflow_load.{setup}.cpu"]["median"] > 0
    assert document["ratios"]["workflow_load.bytecode_vs_source"]["median"] > 0
    assert all(check["ok"] for check in document["checks"]), document["checks"]


def test_quick_tracing_compares_an_untraced_and_a_traced_pair(tmp_path: Path) -> None:
    results = tmp_path / "results"
    run_quick(["tracing"], results, rounds=1, timeout=240)
    document = json.loads((results / "tracing.json").read_text())
    figures = document["figures"]
    for mode in ("off", "on"):
        for step in ("submit", "search"):
            assert figures[f"tracing.{mode}.{step}.p50"]["median"] > 0
            assert figures[f"tracing.{mode}.{step}.cpu"]["median"] > 0
    assert document["ratios"]["tracing.submit.cpu.on_vs_off"]["median"] > 0
    # The traced pair exported to the loopback receiver, from both of its processes.
    assert all(check["ok"] for check in document["checks"]), document["checks"]
    assert set(document["evidence"]["spans_received_by_service"]) == {
        "booking-api",
        "booking-worker",
    }


def test_quick_rate_limit_cost_compares_the_two_scopes(tmp_path: Path) -> None:
    """``python -m bench.rate_limit_cost``: two APIs on one database, shared and
    per-process rate limits, measured against each other."""
    results = tmp_path / "results"
    run_quick([], results, rounds=1, timeout=180, module="bench.rate_limit_cost")
    document = json.loads((results / "rate_limit.json").read_text())
    assert document["ok"] is True
    assert [check["ok"] for check in document["checks"]] == [True, True]
    figures = document["figures"]
    for scope in ("global", "process"):
        assert figures[f"{scope}.p50"]["median"] > 0
        assert figures[f"{scope}.rate"]["median"] > 0
    assert figures["statement.p50"]["median"] > 0
    assert document["ratios"]["latency.p50"]["median"] > 0
    assert "## rate_limit (quick)" in (results / "SUMMARY.md").read_text()
