"""The life of one outgoing webhook delivery (one event to one subscription)."""

from __future__ import annotations

from enum import StrEnum


class DeliveryStatus(StrEnum):
    # Waiting for ``next_attempt_at`` (first try or a retry after backoff).
    PENDING = "pending"
    # Claimed by a dispatcher until ``locked_until``; a crashed one's claim lapses.
    DELIVERING = "delivering"
    SUCCEEDED = "succeeded"
    # Gave up after the maximum attempts; an operator may redeliver.
    PARKED = "parked"

    @property
    def is_unfinished(self) -> bool:
        return self in (DeliveryStatus.PENDING, DeliveryStatus.DELIVERING)
