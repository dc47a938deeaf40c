"""Linked external calendars: their secrets sealed at rest, fetching them (ICS over
HTTP, CalDAV) through the outbound guard, and expanding their events into busy time."""
