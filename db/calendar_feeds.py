"""Private calendar feeds: one person's sessions for their calendar app, by token.

A calendar app subscribes to a URL and cannot send a bearer token, so the URL itself
carries a random token. Only its SHA-256 is stored (``token_digest``): the token is
shown once, when the feed is made, and a leak of this table opens no feed. Reading a
feed compares the digest of the token given with the stored one in constant time.
A revoked feed stays as a row (when it was made and revoked), serving nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.vocabulary import ParticipantRole
from db.models import CalendarFeed

TOKEN_BYTES = 32
"""256 bits of randomness: ``secrets.token_urlsafe(32)``, 43 URL-safe characters."""

FEED_LOCK_CLASS = 0x6361_6C66
"""First key of the two-key advisory lock on one person's feeds (the second is a hash
of role and id); arbitrary, but apart from any other advisory lock."""


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


_NO_FEED = hashlib.sha256(b"no such feed").digest()


def token_opens(feed: CalendarFeed | None, token: str) -> bool:
    """Whether ``token`` opens ``feed`` (None: no such live feed), compared in constant
    time; a missing feed costs the same comparison, so the time taken tells nothing."""
    expected = feed.token_sha256 if feed is not None else _NO_FEED
    return hmac.compare_digest(expected, token_digest(token)) and feed is not None


async def lock_owner(session: AsyncSession, role: ParticipantRole, owner_id: uuid.UUID) -> None:
    """Serialise changes to one person's feeds until the transaction ends, so that two
    concurrent creations cannot both pass the cap on open feeds."""
    await session.execute(
        select(func.pg_advisory_xact_lock(FEED_LOCK_CLASS, func.hashtext(f"{role}:{owner_id}")))
    )


async def open_feed_count(session: AsyncSession, role: ParticipantRole, owner_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(CalendarFeed)
        .where(
            CalendarFeed.owner_role == role.value,
            CalendarFeed.owner_user_id == owner_id,
            CalendarFeed.revoked_at.is_(None),
        )
    )
    return int(count or 0)


async def create_feed(
    session: AsyncSession, role: ParticipantRole, owner_id: uuid.UUID, token: str
) -> CalendarFeed:
    feed = CalendarFeed(
        owner_role=role.value, owner_user_id=owner_id, token_sha256=token_digest(token)
    )
    session.add(feed)
    await session.flush()
    await session.refresh(feed)
    return feed


async def feed_of(
    session: AsyncSession, role: ParticipantRole, owner_id: uuid.UUID, feed_id: uuid.UUID
) -> CalendarFeed | None:
    """The person's feed, its row locked until the transaction ends; None if it is not
    theirs (or does not exist)."""
    feed: CalendarFeed | None = await session.scalar(
        select(CalendarFeed)
        .where(
            CalendarFeed.id == feed_id,
            CalendarFeed.owner_role == role.value,
            CalendarFeed.owner_user_id == owner_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return feed


async def revoke(session: AsyncSession, feed_id: uuid.UUID) -> datetime | None:
    """Revoke the feed now; when it was revoked, None if it had been before."""
    revoked_at: datetime | None = await session.scalar(
        update(CalendarFeed)
        .where(CalendarFeed.id == feed_id, CalendarFeed.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(CalendarFeed.revoked_at)
    )
    return revoked_at


async def feeds_page(
    session: AsyncSession,
    role: ParticipantRole,
    owner_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[CalendarFeed]:
    """The person's feeds, oldest first, after the keyset position (created_at, id)."""
    query = (
        select(CalendarFeed)
        .where(CalendarFeed.owner_role == role.value, CalendarFeed.owner_user_id == owner_id)
        .order_by(CalendarFeed.created_at, CalendarFeed.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(CalendarFeed.created_at, CalendarFeed.id) > tuple_(*after))
    return (await session.scalars(query)).all()


async def live_feed(session: AsyncSession, feed_id: uuid.UUID) -> CalendarFeed | None:
    """The feed if it is not revoked; its token is for the caller to check."""
    feed: CalendarFeed | None = await session.scalar(
        select(CalendarFeed).where(CalendarFeed.id == feed_id, CalendarFeed.revoked_at.is_(None))
    )
    return feed


async def delete_feeds_of(session: AsyncSession, person_ids: Collection[uuid.UUID]) -> int:
    """Every feed of the person, in either role (their erasure); how many there were."""
    result = await session.execute(
        delete(CalendarFeed)
        .where(CalendarFeed.owner_user_id.in_(person_ids))
        .returning(CalendarFeed.id)
    )
    return len(result.all())
