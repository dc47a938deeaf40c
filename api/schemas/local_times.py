"""A session's start and end on one party's wall clock, as responses carry them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from core.local_time import wall_clock


class LocalTimes(BaseModel):
    """A session's start and end on someone's wall clock."""

    time_zone: str = Field(description="IANA time zone.", examples=["Europe/Berlin"])
    start_time: datetime = Field(description="With that zone's offset at the start.")
    end_time: datetime = Field(description="With that zone's offset at the end.")
    utc_offset: str = Field(
        description="The zone's offset from UTC at the start, `±HH:MM`.", examples=["+01:00"]
    )

    @classmethod
    def on(cls, time_zone: str, start: datetime, end: datetime) -> LocalTimes:
        """``start``/``end`` (aware, any offset) on ``time_zone``'s clock."""
        wall = wall_clock(time_zone, start, end)
        return cls(
            time_zone=wall.time_zone,
            start_time=wall.start,
            end_time=wall.end,
            utc_offset=wall.utc_offset,
        )


class SessionZones(NamedTuple):
    """Whose clocks a session is shown on."""

    learner: str
    consultant: str


class RequestClock(NamedTuple):
    """What a request's local times are made of: the learner's zone, and the time it
    is for (its session's, else the start the learner chose; none before either
    exists) with the zone of the consultant it is with (none while nobody is)."""

    learner_time_zone: str
    start: datetime | None = None
    end: datetime | None = None
    consultant_time_zone: str | None = None


class RowWith:
    """A row seen with a few more attributes, for a response model that validates
    from attributes: ``extra`` wins over the row's own."""

    def __init__(self, row: object, **extra: object) -> None:
        self._row = row
        self.__dict__.update(extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)
