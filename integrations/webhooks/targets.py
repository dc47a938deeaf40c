"""Which webhook targets are allowed: the outbound policy (``integrations.outbound``)
with ``BOOKING_WEBHOOK_ALLOWED_TARGETS`` as its allow-list."""

from __future__ import annotations

from integrations.outbound.targets import (
    IPAddress,
    TargetPolicy,
    TargetRefused,
    is_public,
    literal_address,
    webhook_target_policy,
)

__all__ = [
    "IPAddress",
    "TargetPolicy",
    "TargetRefused",
    "is_public",
    "literal_address",
    "webhook_target_policy",
]
