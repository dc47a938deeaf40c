"""``python -m bench``: see bench/run.py."""

from __future__ import annotations

import logging
import os
import sys

from bench.run import main

if __name__ == "__main__":
    code = main()
    # Leave without interpreter finalization, as the booking CLI does: the Temporal
    # SDK's native threads may abort the process while it finalizes, and by now
    # every server is stopped and every file written.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
