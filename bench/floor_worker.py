"""The floor scenario's worker, in its own process like the service's worker.

``python -m bench.floor_worker --task-queue Q`` with ``BOOKING_TEMPORAL_ADDRESS``
(and the other Temporal settings) in the environment; runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from bench.worker_process import run_worker_process
from bench.workloads import build_floor_worker
from core.settings import get_settings
from integrations.temporal_client import connect_temporal

logger = logging.getLogger("bench.floor_worker")


async def serve(task_queue: str) -> None:
    client = await connect_temporal(get_settings())
    worker = build_floor_worker(client, task_queue)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running = asyncio.create_task(worker.run())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        stopping.cancel()
        running.result()
        return
    await worker.shutdown()
    await running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    run_worker_process(lambda: serve(args.task_queue), logger, "the floor worker")


if __name__ == "__main__":
    main()
