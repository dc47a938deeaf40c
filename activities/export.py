"""The ``export.*`` activities: one page of a person's data into their export, and
marking the export ready. Each is one transaction and idempotent."""

from __future__ import annotations

from temporalio import activity

from activities import SessionFactory, transaction
from db import exports, personal_data
from workflows.contracts.export import (
    CollectedPage,
    CollectPageInput,
    ExportActivity,
    FinishExportInput,
)


class ExportActivities:
    def __init__(self, session_factory: SessionFactory) -> None:
        self._sessions = session_factory

    @activity.defn(name=ExportActivity.COLLECT_PAGE)
    async def collect_page(self, arg: CollectPageInput) -> CollectedPage:
        async with transaction(self._sessions) as session:
            page = await personal_data.section_page(
                session, arg.section, arg.subject_id, after=arg.after, limit=arg.page_size
            )
            await exports.store_part(
                session,
                arg.export_id,
                position=arg.position,
                section=arg.section,
                items=page.items,
            )
        return CollectedPage(items=len(page.items), next_cursor=page.next_cursor)

    @activity.defn(name=ExportActivity.FINISH)
    async def finish(self, arg: FinishExportInput) -> None:
        async with transaction(self._sessions) as session:
            await exports.mark_ready(session, arg.export_id)
