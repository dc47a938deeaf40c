"""The ``retention.*`` activity: one batch of the retention sweep, one transaction."""

from __future__ import annotations

import logging

from temporalio import activity

from activities import SessionFactory, transaction
from db import retention
from workflows.contracts.retention import RetentionActivity, SweepBatchInput, SweepBatchResult

logger = logging.getLogger(__name__)


class RetentionActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name=RetentionActivity.SWEEP_BATCH)
    async def sweep_batch(self, arg: SweepBatchInput) -> SweepBatchResult:
        """Idempotent: a retry after the commit finds those rows gone and takes the next."""
        async with transaction(self._sessions) as session:
            removed = await retention.sweep_batch(
                session, arg.kind, older_than=arg.older_than, batch_size=arg.batch_size
            )
        if removed:
            logger.info("retention: %d %s older than %s", removed, arg.kind.value, arg.older_than)
        return SweepBatchResult(removed=removed)
