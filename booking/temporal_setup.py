"""Everything ``booking setup`` (and the dev stack) prepares in the Temporal namespace."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from booking.retention_setup import ensure_retention_schedule, set_namespace_retention
from booking.search_attributes_setup import register_search_attributes
from core.settings import Settings


@dataclass(frozen=True)
class SetupOutcome:
    search_attributes_added: list[str]
    retention_schedule_created: bool


async def set_up_temporal(client: Client, settings: Settings) -> SetupOutcome:
    """Idempotent: the custom search attributes, how long closed workflows are kept,
    and the retention sweep's schedule (created, or updated to the settings)."""
    added = await register_search_attributes(client, settings.temporal_namespace)
    await set_namespace_retention(
        client, settings.temporal_namespace, settings.temporal_namespace_retention
    )
    created = await ensure_retention_schedule(client, settings)
    return SetupOutcome(search_attributes_added=added, retention_schedule_created=created)
