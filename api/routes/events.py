"""The event feed: every domain event once, in an order a consumer can resume from."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, Role
from api.deps import SessionDep, require_any_role
from api.errors import BadRequest
from api.pagination import DEFAULT_PAGE_SIZE, PageLimit, decode_cursor, encode_cursor
from api.schemas.events import EventFeedPage
from core.events import EventType
from db.event_feed import EventEnvelope, FeedPosition, settled_events_after

router = APIRouter(prefix="/v1/events", tags=["events"])

EventsReader = Annotated[Principal, Depends(require_any_role(Role.OPERATOR, Role.EVENTS_READER))]

_CURSOR_KEYS = frozenset({"t", "s"})


def cursor_for(position: FeedPosition) -> str:
    return encode_cursor({"t": position.transaction_id, "s": position.sequence})


def position_of(cursor: str) -> FeedPosition:
    values = decode_cursor(cursor, _CURSOR_KEYS)
    transaction_id, sequence = values["t"], values["s"]
    for value in (transaction_id, sequence):
        # bool is an int to Python; neither belongs in a cursor this API wrote.
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
            raise BadRequest("The cursor is not one this API issued.")
    return FeedPosition(transaction_id, sequence)


@router.get(
    "",
    summary="Read domain events after a cursor (operator or events:read)",
    description=(
        "Events come in a stable order that never changes once served: an event whose "
        "transaction is still open when you read is served later, after your cursor, "
        "never skipped. Store `next_cursor` and pass it back as `after`; an empty page "
        "means you are up to date (poll again later with the same cursor)."
    ),
)
async def read_events(
    session: SessionDep,
    _: EventsReader,
    after: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page")
    ] = None,
    limit: PageLimit = DEFAULT_PAGE_SIZE,
    event_type: Annotated[
        list[EventType] | None,
        Query(alias="type", description="Only these event types (repeatable)"),
    ] = None,
) -> EventFeedPage:
    position = position_of(after) if after is not None else FeedPosition()
    events = list(
        (
            await session.scalars(
                settled_events_after(position, limit=limit + 1, event_types=event_type or ())
            )
        ).all()
    )
    has_more = len(events) > limit
    events = events[:limit]
    if events:
        position = FeedPosition.of(events[-1])
    return EventFeedPage(
        items=[EventEnvelope.of(event) for event in events],
        next_cursor=cursor_for(position),
        has_more=has_more,
    )
