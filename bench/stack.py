"""The servers a benchmark runs against: its own, fresh ones, or a running stack.

By default everything is started here, from the same wheels as ``make run``: an
embedded PostgreSQL on a fresh data directory (migrated to head), the Temporal dev
server (headless, history in memory) and the API as a ``booking api`` subprocess,
each on a free port, all in one scratch directory that is removed afterwards.
Only what the selected scenarios need is started. The API started here runs with
its per-user abuse limits off (``BENCH_API_LIMITS``): one process makes the load.

A running stack is used instead, piece by piece, when the environment names it:

``BOOKING_BENCH_API_URL``   the API (then ``BOOKING_DATABASE_URL`` is required too:
                            scenarios write their data set into the API's database)
``BOOKING_DATABASE_URL``    PostgreSQL, already migrated (``booking migrate``)
``BOOKING_TEMPORAL_ADDRESS`` Temporal (TLS and API key from the usual settings)

With an external API, tokens are minted with that stack's settings
(``BOOKING_JWT_SECRET``), so run the benchmark with the same environment.
Only the environment counts here, never ``.env``: a development database named
there must not receive a benchmark's million rows by accident.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from booking.devstack.errors import DevStackError
from booking.devstack.ports import free_port
from booking.devstack.postgres import EmbeddedPostgres
from booking.devstack.processes import spawn, stop_process, tail, wait_until_ready
from booking.devstack.temporal import TemporalDevServer
from booking.migrate import upgrade_to_head
from booking.tokens import Role, mint_token
from core.settings import Settings
from integrations.temporal_client import connect_temporal

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCALHOST = "127.0.0.1"
API_READY_TIMEOUT = 90.0

ENV_API_URL = "BOOKING_BENCH_API_URL"
ENV_DATABASE_URL = "BOOKING_DATABASE_URL"
ENV_TEMPORAL_ADDRESS = "BOOKING_TEMPORAL_ADDRESS"
# "1": the dev server started here keeps one read and one write partition per task
# queue instead of four (pollers then never wait on an empty partition).
ENV_SINGLE_PARTITION = "BOOKING_BENCH_SINGLE_PARTITION"
SINGLE_PARTITION_CONFIG = (
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
)
# The API started here serves a load generator, not people: its per-user abuse limits
# would otherwise answer 429 for the load (they are the abuse tests' subject, not ours),
# and its bound on requests in flight (200) would shed part of the contention bursts,
# 200 submits beside the consultants' polls, with 503.
BENCH_API_LIMITS = {
    "BOOKING_RATE_LIMIT_READ_PER_SECOND": "0",
    "BOOKING_RATE_LIMIT_WRITE_PER_SECOND": "0",
    "BOOKING_MAX_OPEN_REQUESTS_PER_LEARNER": "100000",
    "BOOKING_API_MAX_CONCURRENT_REQUESTS": "1000",
}
BENCH_API_LIMITS_SUMMARY = (
    "per-user rate limits off, open requests per learner "
    f"{BENCH_API_LIMITS['BOOKING_MAX_OPEN_REQUESTS_PER_LEARNER']}, requests in flight "
    f"{BENCH_API_LIMITS['BOOKING_API_MAX_CONCURRENT_REQUESTS']}"
)
"""How a result's config describes ``BENCH_API_LIMITS``."""


BENCH_ENVIRONMENT = "test"


class Component(StrEnum):
    """What a scenario needs; the API brings the database and Temporal with it."""

    DATABASE = "database"
    TEMPORAL = "temporal"
    API = "api"


def with_dependencies(needs: set[Component]) -> set[Component]:
    if Component.API in needs:
        return needs | {Component.DATABASE, Component.TEMPORAL}
    return set(needs)


def asyncpg_dsn(url: str) -> str:
    """``postgresql://…`` for asyncpg from a SQLAlchemy ``postgresql+asyncpg://…`` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class ChildProcess:
    """A Python process started for a scenario (a worker), logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def ensure_alive(self) -> None:
        if not self.alive():
            raise DevStackError(
                f"{self.name} exited with code {self.process.returncode}; end of "
                f"{self.log_path}:\n{tail(self.log_path)}"
            )

    def stop(self, timeout: float = 30.0) -> None:
        stop_process(self.process, name=self.name, sig=signal.SIGTERM, timeout=timeout)
        self._log.close()


class BenchTemporalServer(TemporalDevServer):
    """The dev server, optionally with ``--dynamic-config-value`` settings."""

    dynamic_config: tuple[str, ...] = ()

    def command(self) -> list[str]:
        command = super().command()
        for value in self.dynamic_config:
            command += ["--dynamic-config-value", value]
        return command


class BenchStack:
    """Start what is missing, hand out addresses, clients and tokens, stop it all."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._environ = dict(env)
        self.external_api_url = env.get(ENV_API_URL) or None
        self.external_database_url = env.get(ENV_DATABASE_URL) or None
        self.external_temporal_address = env.get(ENV_TEMPORAL_ADDRESS) or None
        if self.external_api_url and not self.external_database_url:
            raise DevStackError(
                f"{ENV_API_URL} is set but {ENV_DATABASE_URL} is not: the scenarios write "
                "their data into the API's database, so name it too"
            )
        self.work_dir = Path(tempfile.mkdtemp(prefix="booking-bench-"))
        # The API started here verifies tokens with a secret of this run only.
        self._jwt_secret = secrets.token_urlsafe(48)
        self._postgres: EmbeddedPostgres | None = None
        self._temporal: BenchTemporalServer | None = None
        self._api: ChildProcess | None = None
        self._api_url: str | None = None
        self._children: list[ChildProcess] = []
        self._started: set[Component] = set()
        self.keep_work_dir = False
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------

    def start(self, needs: set[Component]) -> None:
        """Start (or adopt) each needed component. Call from the main thread, outside
        an event loop: the servers die with the thread that spawned them."""
        needs = with_dependencies(needs)
        try:
            if Component.DATABASE in needs:
                self._start_database()
            if Component.TEMPORAL in needs:
                self._start_temporal()
            if Component.API in needs:
                self._start_api()
        except BaseException:
            self.keep_work_dir = True
            self.stop()
            raise
        self._started |= needs

    def stop(self) -> None:
        """Children first (workers, the API), then Temporal, then PostgreSQL."""
        if self._stopped:
            return
        self._stopped = True
        for child in reversed(self._children):
            child.stop()
        self._children.clear()
        if self._api is not None:
            self._api.stop()
            self._api = None
        if self._temporal is not None:
            self._temporal.stop()
            self._temporal = None
        if self._postgres is not None:
            self._postgres.stop()
            shutil.rmtree(self._postgres.data_dir, ignore_errors=True)
            self._postgres = None
        if self.keep_work_dir:
            logger.warning("logs of this run are kept in %s", self.work_dir)
        else:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.keep_work_dir = True
        self.stop()

    def _start_database(self) -> None:
        if self.external_database_url is not None or self._postgres is not None:
            return
        logger.info("starting PostgreSQL (fresh data directory in %s)", self.work_dir)
        postgres = EmbeddedPostgres(self.work_dir / "postgres", free_port(), "booking_bench")
        postgres.start()
        self._postgres = postgres
        logger.info("migrating the benchmark database")
        upgrade_to_head(postgres.url, configure_logging=False)

    def _start_temporal(self) -> None:
        if self.external_temporal_address is not None or self._temporal is not None:
            return
        logger.info("starting the Temporal dev server (headless, in memory)")
        server = BenchTemporalServer(
            free_port(), ui=False, log_file=self.work_dir / "temporal.log", log_level="warn"
        )
        if self._environ.get(ENV_SINGLE_PARTITION) == "1":
            server.dynamic_config = SINGLE_PARTITION_CONFIG
        server.start()
        self._temporal = server

    def _start_api(self) -> None:
        if self.external_api_url is not None or self._api is not None:
            return
        self._api, self._api_url = self._spawn_api("api")

    def _spawn_api(self, name: str) -> tuple[ChildProcess, str]:
        """``booking api`` on a free loopback port with the benchmark's limits, once ready."""
        port = free_port()
        base_url = f"http://{LOCALHOST}:{port}"
        env = {
            **self.child_env(),
            **BENCH_API_LIMITS,
            "BOOKING_API_HOST": LOCALHOST,
            "BOOKING_API_PORT": str(port),
            "BOOKING_PUBLIC_BASE_URL": base_url,
        }
        logger.info("starting %s on port %d", "the API" if name == "api" else name, port)
        child = self._spawn(name, [sys.executable, "-m", "booking.cli", "api"], env)
        try:
            self._wait_for_api(child, base_url)
        except BaseException:
            child.stop()
            raise
        return child, base_url

    def _wait_for_api(self, child: ChildProcess, base_url: str) -> None:
        wait_until_ready(
            f"{base_url}/readyz",
            what="the API",
            timeout=API_READY_TIMEOUT,
            still_running=child.ensure_alive,
            hint=f"; see {child.log_path}",
        )

    # -- what scenarios use ----------------------------------------------------

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL (``postgresql+asyncpg://``)."""
        if self.external_database_url is not None:
            return self.external_database_url
        if self._postgres is None:
            raise RuntimeError("the database was not started (declare Component.DATABASE)")
        return self._postgres.url

    @property
    def temporal_address(self) -> str:
        if self.external_temporal_address is not None:
            return self.external_temporal_address
        if self._temporal is None:
            raise RuntimeError("Temporal was not started (declare Component.TEMPORAL)")
        return self._temporal.address

    @property
    def api_url(self) -> str:
        if self.external_api_url is not None:
            return self.external_api_url.rstrip("/")
        if self._api_url is None:
            raise RuntimeError("the API was not started (declare Component.API)")
        return self._api_url

    def process_ids(self) -> dict[str, int]:
        """The processes started here (servers, API, workers), by name."""
        pids: dict[str, int] = {}
        if self._postgres is not None and self._postgres.pid is not None:
            pids["postgresql"] = self._postgres.pid
        if self._temporal is not None and self._temporal.process is not None:
            pids["temporal"] = self._temporal.process.pid
        if self._api is not None:
            pids["api"] = self._api.pid
        for child in self._children:
            pids[child.name] = child.pid
        pids["benchmark (client)"] = os.getpid()
        return pids

    @property
    def temporal_partitions(self) -> str:
        """How the task queues of the dev server started here are partitioned."""
        if self._temporal is None:
            return "external server"
        if self._temporal.dynamic_config:
            return "1 read and 1 write partition per task queue"
        return "the dev server's default (4 partitions per task queue)"

    @property
    def owns_database(self) -> bool:
        """Whether the database is this run's own, thrown away afterwards."""
        return self._postgres is not None

    def settings(self) -> Settings:
        """Settings pointing at this stack (tokens, Temporal client, engines)."""
        overrides: dict[str, Any] = {
            "database_url": self.database_url if Component.DATABASE in self._started else None
        }
        if Component.TEMPORAL in self._started:
            overrides["temporal_address"] = self.temporal_address
        if self.external_api_url is None:
            overrides["jwt_secret"] = SecretStr(self._jwt_secret)
            overrides["jwt_jwks_url"] = None
        return Settings(**overrides, environment=self._environment())

    def _environment(self) -> str:
        """A stack of the benchmark's own is a test environment, not production (the
        settings' default); a running stack's is the one its environment names."""
        return self._environ.get("BOOKING_ENVIRONMENT") or BENCH_ENVIRONMENT

    async def temporal_client(self) -> Client:
        return await connect_temporal(self.settings())

    def token(self, role: Role, subject: uuid.UUID | None = None) -> str:
        return mint_token(
            self.settings(),
            subject=subject or uuid.uuid4(),
            roles=[role],
            ttl=timedelta(hours=2),
        )

    def auth_headers(self, role: Role, subject: uuid.UUID | None = None) -> dict[str, str]:
        """``Authorization`` for one user (a new one unless ``subject`` is given)."""
        return {"Authorization": f"Bearer {self.token(role, subject)}"}

    def api_client(self, role: Role | None = None, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client on the API, with one user's token of ``role`` if given.

        The API limits each user's request rate, so a load of many requests should
        come from many users: pass ``headers=stack.auth_headers(...)`` per request.
        """
        headers = self.auth_headers(role) if role is not None else {}
        return httpx.AsyncClient(
            base_url=self.api_url, headers=headers, timeout=httpx.Timeout(30.0), **kwargs
        )

    def child_env(self) -> dict[str, str]:
        """The environment of a process that should use this stack."""
        env = {
            **self._environ,
            "BOOKING_ENVIRONMENT": self._environment(),
            "PYTHONUNBUFFERED": "1",
            "BOOKING_LOG_LEVEL": "WARNING",
        }
        # External components are named in the environment already.
        if self._postgres is not None:
            env[ENV_DATABASE_URL] = self._postgres.url
        if self._temporal is not None:
            env[ENV_TEMPORAL_ADDRESS] = self._temporal.address
        if self.external_api_url is None:
            env["BOOKING_JWT_SECRET"] = self._jwt_secret
            env.pop("BOOKING_JWT_JWKS_URL", None)
        return env

    def start_python(
        self, name: str, args: Sequence[str], extra_env: Mapping[str, str] | None = None
    ) -> ChildProcess:
        """``python <args>`` with this stack's environment; stopped with the stack.

        Call from the main thread (an ``async`` scenario runs there)."""
        child = self._spawn(
            name, [sys.executable, *args], {**self.child_env(), **(extra_env or {})}
        )
        self._children.append(child)
        return child

    def start_api(self, name: str) -> tuple[ChildProcess, str]:
        """Another API process beside the stack's own: the same settings and limits, its
        own port; returns it (stopped with the stack, or by ``stop_child``) and its
        base URL once it answers ``/readyz``. Only on a stack whose API started here:
        an external API's settings are not known to copy.

        Call from the main thread (an ``async`` scenario runs there)."""
        if self.external_api_url is not None or self._api is None:
            raise DevStackError(
                f"{name} can only be started beside an API of the benchmark's own "
                f"(unset {ENV_API_URL})"
            )
        child, base_url = self._spawn_api(name)
        self._children.append(child)
        return child, base_url

    def stop_child(self, child: ChildProcess) -> None:
        if child in self._children:
            self._children.remove(child)
        child.stop()

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> ChildProcess:
        log_path = self.work_dir / f"{name.replace(' ', '-')}.log"
        log = log_path.open("ab")
        process = spawn(command, env=env, cwd=REPO_ROOT, output=log)
        return ChildProcess(name, process, log_path, log)

    # -- facts -----------------------------------------------------------------

    async def describe(self) -> dict[str, Any]:
        """What each component is, with server versions, for the result files."""
        facts: dict[str, Any] = {}
        if Component.DATABASE in self._started:
            version = await _postgres_version(self.database_url)
            where = "embedded, fresh data directory" if self._postgres else "external"
            facts["database"] = f"PostgreSQL {version} ({where})"
        if Component.TEMPORAL in self._started:
            version = await _temporal_version(self)
            where = "dev server, headless, in memory" if self._temporal else "external"
            facts["temporal"] = f"Temporal {version} ({where})"
        if Component.API in self._started:
            facts["api"] = (
                "uvicorn subprocess (booking api)" if self._api else f"external ({self.api_url})"
            )
        return facts


async def _postgres_version(url: str) -> str:
    import asyncpg

    try:
        connection = await asyncpg.connect(asyncpg_dsn(url))
    except (OSError, asyncpg.PostgresError) as error:
        return f"unknown ({error})"
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def _temporal_version(stack: BenchStack) -> str:
    try:
        async with asyncio.timeout(10):
            client = await stack.temporal_client()
            info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    except Exception as error:  # a fact for the report, never a reason to fail
        return f"unknown ({type(error).__name__})"
    return info.server_version or "unknown"
