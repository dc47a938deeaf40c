"""Linked calendars and their busy time: the rows (``linked``), the busy set and the
sync state written together (``busy_sets``). Never commits for its caller."""
