"""The scenarios; importing this package registers them, in the order they run.

Planned beside these (see the issue): ``idle`` (10,000 requests parked awaiting
confirmation). Each becomes a module here and an import below; the floor and search
scenarios show the shape.
"""

from bench.scenarios import floor, search  # isort: skip
from bench.scenarios import booking, contention  # after floor: they read its results

__all__ = ["booking", "contention", "floor", "search"]
