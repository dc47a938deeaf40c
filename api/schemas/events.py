"""The event feed's page: events in feed order and where to resume."""

from __future__ import annotations

from pydantic import BaseModel, Field

from db.event_feed import EventEnvelope


class EventFeedPage(BaseModel):
    items: list[EventEnvelope]
    next_cursor: str = Field(
        description="Always present: pass it as `after` to continue, now or later. "
        "A consumer that stores it resumes exactly where it stopped."
    )
    has_more: bool = Field(description="More events are already available after this page.")
