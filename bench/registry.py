"""The scenarios ``python -m bench`` knows, and what each one is handed.

Adding a scenario: write ``bench/scenarios/<name>.py`` with

    @scenario("name", needs={Component.API}, summary="one line for --list")
    async def run(ctx: BenchContext) -> ScenarioResult:
        result = ScenarioResult("name")
        for number in ctx.round_numbers():
            ...  # measure; keep one value per round for each figure
        result.figure("name.rate", "what it is", "unit/s", rates, better=Better.HIGHER)
        result.ratio(...)   # against a reference measured in the same run
        return result

and import the module in ``bench/scenarios/__init__.py`` (the import order is the
order ``make bench`` runs them in). ``ctx.stack`` has started what ``needs`` lists;
``ctx.results`` holds what earlier scenarios of this invocation measured (a
scenario comparing itself with the floor reads ``ctx.results["floor"]``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from bench.results import ScenarioResult
from bench.stack import BenchStack, Component

logger = logging.getLogger("bench")


@dataclass
class BenchContext:
    stack: BenchStack
    rounds: int
    quick: bool
    run_id: str
    """Short and unique per invocation: prefixes workflow ids and names of test data."""
    results: dict[str, ScenarioResult] = field(default_factory=dict)
    seed: int = 20261127

    def round_numbers(self) -> Iterator[int]:
        return iter(range(1, self.rounds + 1))

    def rng(self, salt: str) -> random.Random:
        """A seeded generator, so two runs draw the same requests and data."""
        return random.Random(f"{self.seed}:{salt}")

    def say(self, message: str) -> None:
        logger.info(message)


ScenarioFunction = Callable[[BenchContext], Awaitable[ScenarioResult]]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: ScenarioFunction
    needs: frozenset[Component]
    summary: str
    by_default: bool = True
    """False: runs only when named (``make bench SCENARIOS=name``), e.g. when it would
    take ``make bench`` past its time budget."""


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, *, needs: set[Component], summary: str, by_default: bool = True
) -> Callable[[ScenarioFunction], ScenarioFunction]:
    """Register a scenario under ``name`` (see the module docstring)."""

    def register(function: ScenarioFunction) -> ScenarioFunction:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} is registered twice")
        SCENARIOS[name] = Scenario(name, function, frozenset(needs), summary, by_default)
        return function

    return register


def load_scenarios() -> dict[str, Scenario]:
    """Every registered scenario, in the order ``make bench`` runs them."""
    import bench.scenarios  # noqa: F401  (registers them on import)

    return SCENARIOS
