"""When to try a failed delivery again."""

from __future__ import annotations

import random
from datetime import timedelta


def retry_delay(attempts: int, *, base: timedelta, cap: timedelta, rng: random.Random) -> timedelta:
    """Exponential in the attempts made so far, capped, with "equal jitter".

    Half the delay is fixed so a retry never comes right away; the random half keeps
    the retries of many deliveries that failed together (a receiver outage) from
    arriving together when it comes back.
    """
    exponent = min(max(attempts - 1, 0), 32)  # 2**32 * any base is past any sane cap
    delay = min(cap.total_seconds(), base.total_seconds() * 2**exponent)
    return timedelta(seconds=delay / 2 + rng.uniform(0, delay / 2))
