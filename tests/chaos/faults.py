"""The faults a chaos run inflicts while bookings are in flight, each a loop that runs
until told to stop and counts what it did (a fault that never happened proves nothing).

- ``WorkerKiller``: SIGKILLs the worker process at random moments and starts a new
  one; it also restarts a worker that exited on its own, as a supervisor
  (systemd, ``restart: unless-stopped``) would, and counts those exits.
- ``TemporalRestart``: stops the Temporal dev server (its SQLite file keeps the state)
  once, at a random moment, and starts it again on the same port.
- ``ConnectionKiller``: ends the worker's PostgreSQL connections that are in the
  middle of a reservation, i.e. inside a transaction that touched the slots or
  sessions tables, with ``pg_terminate_backend``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field

import asyncpg

from booking.devstack.temporal import TemporalDevServer
from tests.support.worker_process import WorkerProcess

logger = logging.getLogger("chaos")


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; True when ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True


@dataclass
class WorkerKiller:
    worker: WorkerProcess
    rng: random.Random
    kills: int = 0
    max_kills: int = 3
    between: tuple[float, float] = (3.0, 6.0)
    down_for: tuple[float, float] = (0.0, 1.5)
    exits: list[int] = field(default_factory=list)
    """Exit statuses of workers that died without being killed."""

    async def run(self, stop: asyncio.Event) -> None:
        next_kill = asyncio.get_running_loop().time() + self.rng.uniform(*self.between)
        while not stop.is_set():
            self.supervise()
            now = asyncio.get_running_loop().time()
            if self.kills < self.max_kills and now >= next_kill and self.worker.running:
                self.worker.kill()
                self.kills += 1
                logger.info("worker SIGKILLed (%d)", self.kills)
                await asyncio.sleep(self.rng.uniform(*self.down_for))
                self.worker.start()
                next_kill = asyncio.get_running_loop().time() + self.rng.uniform(*self.between)
            await _sleep_or_stop(stop, 0.2)
        self.supervise()

    def supervise(self) -> None:
        code = self.worker.reap()
        if code is not None:
            logger.warning("worker exited on its own with %s; restarting it", code)
            self.exits.append(code)
            self.worker.start()


@dataclass
class TemporalRestart:
    server: TemporalDevServer
    rng: random.Random
    after: tuple[float, float] = (6.0, 15.0)
    down_for: float = 1.0
    restarts: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        if await _sleep_or_stop(stop, self.rng.uniform(*self.after)):
            return
        logger.info("stopping the Temporal server")
        await asyncio.to_thread(self.server.stop)
        await asyncio.sleep(self.down_for)
        await asyncio.to_thread(self.server.start)
        self.restarts += 1
        logger.info("Temporal server back")


_RESERVING_BACKENDS = """
SELECT pid FROM pg_stat_activity
 WHERE application_name = $1
   AND xact_start IS NOT NULL
   AND (query ILIKE '%consultant_availability_slots%' OR query ILIKE '%scheduled_sessions%')
"""


@dataclass
class ConnectionKiller:
    dsn: str
    application_name: str
    rng: random.Random
    kills: int = 0
    max_kills: int = 12
    every: float = 0.02
    cooldown: tuple[float, float] = (0.5, 2.0)

    async def run(self, stop: asyncio.Event) -> None:
        connection = await asyncpg.connect(self.dsn)
        try:
            while not stop.is_set() and self.kills < self.max_kills:
                pids = [
                    row["pid"]
                    for row in await connection.fetch(_RESERVING_BACKENDS, self.application_name)
                ]
                if not pids:
                    await _sleep_or_stop(stop, self.every)
                    continue
                pid = self.rng.choice(pids)
                if await connection.fetchval("SELECT pg_terminate_backend($1)", pid):
                    self.kills += 1
                    logger.info("terminated reserving connection %s (%d)", pid, self.kills)
                await _sleep_or_stop(stop, self.rng.uniform(*self.cooldown))
        finally:
            await connection.close()
