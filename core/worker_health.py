"""The worker's heartbeat file: what the worker writes, and when a reader calls it stale.

The worker rewrites the file every ``BOOKING_WORKER_HEALTH_INTERVAL`` while its
Temporal worker runs and the server answers a health check; ``booking worker-health``
reads it. Missing a beat can be a slow moment; missing three means the worker has
stopped polling, cannot reach Temporal, or its event loop is stuck.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

MISSED_BEATS_TOLERATED = 3


def heartbeat(at: datetime, pid: int) -> str:
    return json.dumps({"at": at.isoformat(), "pid": pid})


def heartbeat_problem(text: str | None, *, now: datetime, interval: timedelta) -> str | None:
    """Why the worker that wrote ``text`` is not healthy, or ``None`` when it is."""
    if text is None:
        return "no heartbeat yet (the worker has not started polling, or has stopped)"
    try:
        at = datetime.fromisoformat(json.loads(text)["at"])
    except (ValueError, KeyError, TypeError):
        return "the heartbeat file is unreadable"
    if at.tzinfo is None:
        return "the heartbeat file is unreadable"
    age = now - at
    if age > interval * MISSED_BEATS_TOLERATED:
        return (
            f"the last heartbeat is {age.total_seconds():.0f} s old (one is due every "
            f"{interval.total_seconds():g} s): the worker is not polling or cannot reach Temporal"
        )
    return None
