"""``PersonalDataExportWorkflow``: gathers everything the service holds about one
person into an export, section by section, a page per activity.

Each page is stored as a numbered part of the export by the activity itself, so a
history of any size stays small (ids, cursors and counts only), a crash resumes at
the page it was on, and a retried page writes nothing twice. The current details in
the Temporal UI say which section it is on and how many items it has.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from core.vocabulary import PersonalDataSection
    from workflows.contracts.export import (
        WORKFLOW_NAME,
        CollectedPage,
        CollectPageInput,
        ExportActivity,
        ExportInput,
        ExportSummary,
        FinishExportInput,
    )

PAGE_TIMEOUT = timedelta(minutes=1)
CALENDARS_SECTION_PATCH = "export-calendars-section"
"""Exports started before the calendars section existed replay without it."""
# ``workflow.patched`` id: exports that had passed the end of the sections before the
# calendar feeds became one replay without them.
CALENDAR_FEEDS_SECTION = "export-calendar-feeds"
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name=WORKFLOW_NAME)
class PersonalDataExportWorkflow:
    def __init__(self) -> None:
        self._summary = ExportSummary(items={})

    @workflow.run
    async def run(self, request: ExportInput) -> ExportSummary:
        position = 0
        for section in PersonalDataSection:
            if section is PersonalDataSection.CALENDARS and not workflow.patched(
                CALENDARS_SECTION_PATCH
            ):
                continue  # an export that began before calendars were part of it
            if section is PersonalDataSection.CALENDAR_FEEDS and not workflow.patched(
                CALENDAR_FEEDS_SECTION
            ):
                continue
            self._summary.items[section] = 0
            cursor = None
            while True:
                self._show(f"collecting {section.value}")
                page: CollectedPage = await workflow.execute_activity(
                    ExportActivity.COLLECT_PAGE,
                    CollectPageInput(
                        export_id=request.export_id,
                        subject_id=request.subject_id,
                        section=section,
                        position=position,
                        after=cursor,
                        page_size=request.page_size,
                    ),
                    result_type=CollectedPage,
                    start_to_close_timeout=PAGE_TIMEOUT,
                    retry_policy=RETRY,
                )
                position += 1
                self._summary.items[section] += page.items
                cursor = page.next_cursor
                if cursor is None:
                    break
        await workflow.execute_activity(
            ExportActivity.FINISH,
            FinishExportInput(export_id=request.export_id),
            start_to_close_timeout=PAGE_TIMEOUT,
            retry_policy=RETRY,
        )
        self._show("ready")
        return self._summary

    def _show(self, doing: str) -> None:
        counts = ", ".join(f"{s.value} {n}" for s, n in self._summary.items.items() if n)
        workflow.set_current_details(f"{doing}; {counts or 'no items yet'}")
