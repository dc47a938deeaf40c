"""Errors of the local stack; the CLI prints their message without a traceback."""

from __future__ import annotations


class DevStackError(RuntimeError):
    """A local service could not be started or stopped."""
