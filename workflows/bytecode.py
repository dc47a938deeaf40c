"""Bytecode for the workflow modules, even where PYTHONDONTWRITEBYTECODE is set.

The workflow sandbox imports the workflow modules afresh for every workflow the
worker loads (a new one, or one evicted from its cache and replayed). Without
bytecode on disk each of those loads compiles ``workflows/consultation.py`` from
source again, about 20 ms of CPU. Containers and some machines set
PYTHONDONTWRITEBYTECODE, so the worker writes the workflows' bytecode itself, once,
at start-up (an installed wheel already has it; an editable checkout may not).
"""

from __future__ import annotations

import compileall
import logging
from pathlib import Path

import workflows

logger = logging.getLogger(__name__)


def keep_workflow_bytecode() -> bool:
    """Compile the workflow package's modules whose bytecode is missing or stale;
    False (and a log line) when it cannot be written, e.g. on a read-only disk."""
    package = Path(workflows.__file__).parent
    written = compileall.compile_dir(package, maxlevels=0, quiet=2)
    if not written:
        logger.info("could not write bytecode for %s; workflows load from source", package)
    return bool(written)
