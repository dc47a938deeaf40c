"""The service's worker (``worker.py``, unchanged) with more task pollers.

``python -m bench.tuned_worker --workflow-task-polls N [--activity-task-polls M]``
runs ``worker.run_worker`` exactly as ``booking worker`` does, except that the
``Worker`` it builds gets these poller maxima (the SDK's default is 5 each). For
measuring what a poller setting buys before proposing it for ``worker.py``.
"""

from __future__ import annotations

import argparse
import functools
import logging

from temporalio.worker import Worker

import worker as service_worker
from bench.worker_process import run_worker_process
from core.settings import get_settings

logger = logging.getLogger("bench.tuned_worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workflow-task-polls", type=int, required=True)
    parser.add_argument("--activity-task-polls", type=int, default=None)
    args = parser.parse_args()
    options = {"max_concurrent_workflow_task_polls": args.workflow_task_polls}
    if args.activity_task_polls is not None:
        options["max_concurrent_activity_task_polls"] = args.activity_task_polls
    # build_worker looks the class up in its module: hand it one with these options.
    tuned = functools.partial(Worker, **options)
    setattr(service_worker, "Worker", tuned)  # noqa: B010
    run_worker_process(
        lambda: service_worker.run_worker(get_settings()), logger, "the tuned worker"
    )


if __name__ == "__main__":
    main()
