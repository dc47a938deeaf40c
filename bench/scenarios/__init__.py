"""The scenarios; importing this package registers them, in the order they run."""

from bench.scenarios import floor, search, workflow_load  # isort: skip
from bench.scenarios import calendar_sync  # isort: skip
from bench.scenarios import booking, contention, contention_caps  # isort: skip  (after floor)
from bench.scenarios import tracing  # isort: skip
from bench.scenarios import scale  # isort: skip  (after booking: the same bookings, more processes)
from bench.scenarios import idle  # isort: skip  (last: it leaves the most behind)

__all__ = [
    "booking",
    "calendar_sync",
    "contention",
    "contention_caps",
    "floor",
    "idle",
    "scale",
    "search",
    "tracing",
    "workflow_load",
]
