"""The guarded httpx transport webhooks are sent through (``integrations.outbound``)."""

from __future__ import annotations

from integrations.outbound.transport import (
    GuardedBackend,
    GuardedTransport,
    OutboundTargetRefused,
    Resolver,
    resolve,
)

WebhookTargetRefused = OutboundTargetRefused
"""The connection was not made: the target is not allowed."""

__all__ = [
    "GuardedBackend",
    "GuardedTransport",
    "Resolver",
    "WebhookTargetRefused",
    "resolve",
]
