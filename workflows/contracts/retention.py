"""What crosses the boundary of the retention sweep: its names, its input (the
retention policy, copied from the settings by ``booking setup`` into the schedule),
its activity's input and output, and its result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from core.vocabulary import RetentionKind

if TYPE_CHECKING:
    from core.settings import Settings

WORKFLOW_NAME = "RetentionSweepWorkflow"
WORKFLOW_ID = "retention-sweep"
SCHEDULE_ID = "retention-sweep"

SWEEP_ORDER: tuple[RetentionKind, ...] = (
    # Deliveries first: an event whose deliveries are gone has nothing left to wait for.
    RetentionKind.WEBHOOK_DELIVERIES,
    RetentionKind.DELIVERED_EVENTS,
    RetentionKind.INBOUND_EVENTS,
    RetentionKind.REQUEST_DETAILS,
    RetentionKind.MEETING_LINKS,
    RetentionKind.EXPORTS,
)


class RetentionActivity(StrEnum):
    SWEEP_BATCH = "retention.sweep_batch"


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    """How long each kind is kept (seconds: the JSON converter has no timedelta), how
    many rows one sweep transaction takes, and after how many batches a run continues
    as new (which keeps its history small). ``resume_from`` is where a run that
    continued as new picks up."""

    keep_seconds: dict[RetentionKind, float]
    batch_size: int
    max_batches_per_run: int = 500
    resume_from: RetentionKind | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        keep = {
            RetentionKind.WEBHOOK_DELIVERIES: settings.retention_webhook_deliveries,
            RetentionKind.DELIVERED_EVENTS: settings.retention_delivered_events,
            RetentionKind.INBOUND_EVENTS: settings.retention_inbound_events,
            RetentionKind.REQUEST_DETAILS: settings.retention_request_details,
            RetentionKind.MEETING_LINKS: settings.retention_meeting_links,
            RetentionKind.EXPORTS: settings.retention_exports,
        }
        return cls(
            keep_seconds={kind: value.total_seconds() for kind, value in keep.items()},
            batch_size=settings.retention_batch_size,
        )

    def keep_for(self, kind: RetentionKind) -> timedelta:
        return timedelta(seconds=self.keep_seconds[kind])


@dataclass(frozen=True, kw_only=True)
class SweepBatchInput:
    kind: RetentionKind
    older_than: datetime
    batch_size: int


@dataclass(frozen=True, kw_only=True)
class SweepBatchResult:
    removed: int


@dataclass(kw_only=True)
class SweepReport:
    """Rows removed (or cleared) per kind by this run."""

    removed: dict[RetentionKind, int] = field(default_factory=dict)
