"""Logging for the command-line entry points (the API may refine it in its factory)."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Log records to stderr at ``level``; replaces any earlier configuration."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, stream=sys.stderr, force=True)
    # Alembic announces each of its plugins at INFO on every run.
    plugins = logging.getLogger("alembic.runtime.plugins")
    plugins.setLevel(max(logging.getLogger().level, logging.WARNING))
