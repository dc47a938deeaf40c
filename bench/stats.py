"""Percentiles and spreads, with no dependency beyond the standard library."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating linearly between closest ranks.

    Same definition as NumPy's default ("linear"): p50 of [1, 2, 3, 4] is 2.5.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0-100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


@dataclass(frozen=True, slots=True)
class Spread:
    """How one figure varied over the rounds of a run."""

    median: float
    minimum: float
    maximum: float
    q1: float
    q3: float
    count: int

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def relative_range(self) -> float:
        """(max - min) / median: 0.1 means the rounds spanned 10 % of the median."""
        if self.median == 0:
            return 0.0 if self.maximum == self.minimum else math.inf
        return (self.maximum - self.minimum) / abs(self.median)


def spread(rounds: Sequence[float]) -> Spread:
    if not rounds:
        raise ValueError("spread of no rounds")
    return Spread(
        median=statistics.median(rounds),
        minimum=min(rounds),
        maximum=max(rounds),
        q1=percentile(rounds, 25),
        q3=percentile(rounds, 75),
        count=len(rounds),
    )


@dataclass(frozen=True, slots=True)
class Latencies:
    """Percentiles of one round of latency samples, in milliseconds."""

    p50: float
    p95: float
    p99: float
    maximum: float
    count: int


def latencies_ms(samples_ns: Sequence[int]) -> Latencies:
    """Summarise ``perf_counter_ns`` durations as milliseconds."""
    values = [sample / 1e6 for sample in samples_ns]
    return Latencies(
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        p99=percentile(values, 99),
        maximum=max(values),
        count=len(values),
    )
