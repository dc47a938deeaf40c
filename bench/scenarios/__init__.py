"""The scenarios; importing this package registers them, in the order they run."""

from bench.scenarios import floor, search, workflow_load  # isort: skip
from bench.scenarios import booking, contention  # isort: skip  (after floor: they read it)
from bench.scenarios import idle  # isort: skip  (last: it leaves the most behind)

__all__ = ["booking", "contention", "floor", "idle", "search", "workflow_load"]
