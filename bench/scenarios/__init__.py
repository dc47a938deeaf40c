"""The scenarios; importing this package registers them, in the order they run.

Planned beside these (see the issue): ``booking`` (end to end through the HTTP API,
ratios to the floor), ``contention`` (200 requests for 10 slots) and ``idle``
(10,000 requests parked awaiting confirmation). Each becomes a module here and an
import below; the floor and search scenarios show the shape.
"""

from bench.scenarios import floor, search

__all__ = ["floor", "search"]
