"""The life of a benchmark worker process (``bench.floor_worker``, ``bench.tuned_worker``).

Warnings and errors go to stderr; the exception that ends the worker is logged with
its traceback and makes the exit status 1. The process leaves without interpreter
finalization, as ``booking worker`` does (``booking.cli.exit_without_finalizing``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from booking.cli import exit_without_finalizing


def run_worker_process(
    main: Callable[[], Coroutine[Any, Any, None]], logger: logging.Logger, what: str
) -> NoReturn:
    """Run ``main()`` to its end, then leave: 0, or 1 once "``what`` failed" is logged.

    ``main`` is called inside the guard, so that an error while building the worker
    (its settings, say) is logged and counted like one while it runs.
    """
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    code = 0
    try:
        asyncio.run(main())
    except Exception:
        logger.exception("%s failed", what)
        code = 1
    # The SDK's native threads may abort the process during interpreter finalization.
    exit_without_finalizing(code)
