"""``booking dev``: the whole service on one machine with nothing but Python.

Start order: PostgreSQL (embedded, unless ``BOOKING_DATABASE_URL`` is set), the
Temporal dev server with its UI, migrations, search attributes, optional demo data,
then the worker and the API as child processes. Ctrl-C or SIGTERM stops them in
reverse order; a child that dies on its own stops the stack with a message.

Services run in their own process groups, so the terminal's Ctrl-C reaches only this
process and the API can finish its requests before Temporal and PostgreSQL go away.
When this process is killed outright, its watchdog stops them all (``watchdog.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType

import typer
from sqlalchemy.engine import make_url

from booking.demo import DEMO_USERS, DemoSummary, seed_demo
from booking.devstack.errors import DevStackError
from booking.devstack.instance import StackLock
from booking.devstack.ports import PortNeed, check_ports
from booking.devstack.postgres import EmbeddedPostgres
from booking.devstack.processes import spawn, stop_process, wait_until_ready
from booking.devstack.temporal import TemporalDevServer, find_temporal_binary
from booking.devstack.watchdog import Watchdog
from booking.migrate import upgrade_to_head
from booking.temporal_cli import command_line, temporal_cli_args
from booking.temporal_setup import set_up_temporal
from booking.tokens import TokenConfigError, mint_token
from core.settings import Settings
from db.engine import create_engine, create_session_factory
from integrations.temporal_client import connect_temporal

LOCALHOST = "127.0.0.1"
DEMO_TOKEN_TTL = timedelta(hours=12)
READY_TIMEOUT = 90.0

Say = Callable[[str], None]


def _progress(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.CYAN)


@dataclass
class _Child:
    """A Python service started as ``python -m booking.cli <command>``."""

    name: str
    process: subprocess.Popen[bytes]


class DevStack:
    def __init__(
        self,
        settings: Settings,
        *,
        demo: bool = False,
        say: Say = _progress,
        show: Say = typer.echo,
    ) -> None:
        self.settings = settings
        self.postgres_port = settings.postgres_port
        self.demo = demo
        self.say = say
        self.show = show
        self.data_dir = settings.data_dir.absolute()
        self.temporal_port = _port_of(settings.temporal_address)
        self.temporal_address = f"{LOCALHOST}:{self.temporal_port}"
        self.database_url = settings.database_url
        self.embedded_postgres = settings.database_url is None
        self._children: list[_Child] = []
        self._temporal: TemporalDevServer | None = None
        self._postgres: EmbeddedPostgres | None = None
        self._lock = StackLock(self.data_dir)
        self._watchdog = Watchdog()

    def run(self) -> int:
        """Start everything, supervise until a signal, stop everything.

        Returns 0 after Ctrl-C/SIGTERM, 1 when a service failed (already reported).
        """
        code = 0
        with _signals_as_keyboard_interrupt(), ExitStack() as services:
            try:
                needs = self.port_needs()
                self._lock.acquire(needs)
                services.callback(self._lock.release)
                # Every port at once, before anything starts: one run shows every conflict.
                check_ports(needs)
                # Started first and released last: whatever runs is watched, and a
                # `kill -9` of this process still stops it all (see watchdog.py).
                self._watchdog.start()
                services.callback(self._watchdog.release)
                self._start(services)
                self.show(self.banner())
                self._supervise()
            except KeyboardInterrupt:
                self.say("\nstopping …")
            except DevStackError as error:
                # Said before the services stop, so it is not lost among their output.
                self.say(f"error: {error}")
                code = 1
            finally:
                _ignore_further_signals(self.say)
        if code == 0:
            self.say("stopped")
        return code

    # -- start -----------------------------------------------------------------

    def _start(self, services: ExitStack) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

        if self.embedded_postgres:
            self.say(f"starting PostgreSQL on {LOCALHOST}:{self.postgres_port} …")
            postgres = EmbeddedPostgres(
                self.data_dir / "postgres",
                self.postgres_port,
                port_env_var="BOOKING_POSTGRES_PORT",
                watchdog=self._watchdog,
            )
            services.callback(self._stop, "PostgreSQL", postgres.stop)
            postgres.start()
            self._postgres = postgres
            self.database_url = postgres.url
        else:
            shown = make_url(self.settings.require_database_url()).render_as_string()
            self.say(f"using the database at BOOKING_DATABASE_URL ({shown})")

        self.say(f"starting the Temporal dev server on {self.temporal_address} …")
        temporal = TemporalDevServer(
            self.temporal_port,
            host=LOCALHOST,
            ui=True,
            ui_port=self.settings.temporal_ui_port,
            namespace=self.settings.temporal_namespace,
            db_file=self.data_dir / "temporal.db",
            log_file=self.data_dir / "temporal.log",
            port_env_var="BOOKING_TEMPORAL_ADDRESS",
            ui_port_env_var="BOOKING_TEMPORAL_UI_PORT",
            watchdog=self._watchdog,
        )
        services.callback(self._stop, "the Temporal server", temporal.stop)
        temporal.start()
        self._temporal = temporal

        self.say("applying database migrations …")
        upgrade_to_head(self._database_url(), configure_logging=False)

        self.say("setting up Temporal (search attributes, retention, schedules) …")
        asyncio.run(self._set_up_temporal())

        if self.demo:
            self.say("seeding demo data …")
            summary = asyncio.run(self._seed_demo())
            self.say(
                f"  added {summary.service_types} service types, {summary.consultants} "
                f"consultants, {summary.slots} availability slots"
            )

        self._start_child(services, "worker", "the worker")
        self._start_child(services, "api", "the API")
        self.say(f"waiting for the API on {self._api_base_url()} …")
        self._wait_until_api_ready()

    def port_needs(self) -> list[PortNeed]:
        """Every port the stack listens on, with the setting that moves it.

        The Temporal dev server's HTTP API and metrics endpoints take ports the
        kernel picks free at each start, so they never conflict and need no setting.
        """
        temporal_host = self.settings.temporal_address.rpartition(":")[0] or LOCALHOST
        needs = [
            PortNeed(
                "the Temporal server",
                LOCALHOST,
                self.temporal_port,
                "BOOKING_TEMPORAL_ADDRESS",
                "--temporal-port",
                value_format=f"{temporal_host}:{{port}}",
            ),
            PortNeed(
                "the Temporal UI",
                LOCALHOST,
                self.settings.temporal_ui_port,
                "BOOKING_TEMPORAL_UI_PORT",
                "--temporal-ui-port",
            ),
            PortNeed(
                "the API",
                self.settings.api_host,
                self.settings.api_port,
                "BOOKING_API_PORT",
                "--api-port",
            ),
        ]
        if self.embedded_postgres:
            postgres = PortNeed(
                "PostgreSQL",
                LOCALHOST,
                self.postgres_port,
                "BOOKING_POSTGRES_PORT",
                "--postgres-port",
            )
            needs.insert(0, postgres)
        return needs

    def _database_url(self) -> str:
        assert self.database_url is not None
        return self.database_url

    def _child_env(self) -> dict[str, str]:
        """The worker and the API run with plain (production-default) settings, so
        what the dev stack chose for them is passed on explicitly."""
        env = {
            **os.environ,
            "BOOKING_ENVIRONMENT": self.settings.environment.value,
            "BOOKING_DATABASE_URL": self._database_url(),
            "BOOKING_TEMPORAL_ADDRESS": self.temporal_address,
            "BOOKING_WEBHOOK_ALLOWED_TARGETS": ",".join(self.settings.webhook_allowed_targets),
            "BOOKING_CALENDAR_ALLOWED_TARGETS": ",".join(self.settings.calendar_allowed_targets),
            # Given as options of `booking dev`, they are not in the environment yet.
            "BOOKING_API_HOST": self.settings.api_host,
            "BOOKING_API_PORT": str(self.settings.api_port),
            "PYTHONUNBUFFERED": "1",
        }
        if self.settings.jwt_jwks_url is None and self.settings.jwt_secret is not None:
            env["BOOKING_JWT_SECRET"] = self.settings.jwt_secret.get_secret_value()
        if self.settings.calendar_secret_key is not None:
            env["BOOKING_CALENDAR_SECRET_KEY"] = (
                self.settings.calendar_secret_key.get_secret_value()
            )
        return env

    def _start_child(self, services: ExitStack, command: str, name: str) -> None:
        self.say(f"starting {name} …")
        process = spawn(
            [sys.executable, "-m", "booking.cli", command],
            env=self._child_env(),
            on_parent_death=signal.SIGTERM,
        )
        self._watchdog.watch(process.pid, signal.SIGTERM, name)
        services.callback(self._stop, name, lambda: stop_process(process, name=name, timeout=30))
        self._children.append(_Child(name, process))

    async def _set_up_temporal(self) -> None:
        settings = self.settings.model_copy(update={"temporal_address": self.temporal_address})
        client = await connect_temporal(settings)
        await set_up_temporal(client, settings)

    async def _seed_demo(self) -> DemoSummary:
        engine = create_engine(self.settings.model_copy(update={"database_url": self.database_url}))
        try:
            return await seed_demo(create_session_factory(engine))
        finally:
            await engine.dispose()

    def _api_base_url(self) -> str:
        host = self.settings.api_host
        if host in {"0.0.0.0", "::", ""}:
            host = LOCALHOST
        return f"http://{host}:{self.settings.api_port}"

    def _wait_until_api_ready(self) -> None:
        wait_until_ready(
            f"{self._api_base_url()}/readyz",
            what="the API",
            timeout=READY_TIMEOUT,
            still_running=self._check_children,
            poll=0.25,
        )

    # -- run and stop ----------------------------------------------------------

    def _supervise(self) -> None:
        while True:
            self._check_children()
            time.sleep(0.5)

    def _check_children(self) -> None:
        for child in self._children:
            code = child.process.poll()
            if code is not None:
                raise DevStackError(
                    f"{child.name} exited unexpectedly with code {code}; stopping the stack "
                    "(its output is above)"
                )
        for name, running in (
            ("the Temporal server", self._temporal.running if self._temporal else True),
            ("PostgreSQL", self._postgres.running if self._postgres else True),
        ):
            if not running:
                raise DevStackError(f"{name} exited unexpectedly; stopping the stack")

    def _stop(self, name: str, stop: Callable[[], object]) -> None:
        self.say(f"stopping {name} …")
        stop()

    # -- output ----------------------------------------------------------------

    def banner(self) -> str:
        api = self._api_base_url()
        lines = [
            "",
            "Booking service is running.",
            f"  API           {api}",
            f"  API docs      {api}/docs",
            f"  Temporal UI   http://{LOCALHOST}:{self.settings.temporal_ui_port}",
            f"  Temporal      {self.temporal_address} "
            f"(namespace {self.settings.temporal_namespace}, "
            f"task queue {self.settings.temporal_task_queue})",
        ]
        if self._postgres is not None:
            lines.append(f"  PostgreSQL    {self._postgres.dsn}")
        lines += self._temporal_cli_lines()
        lines += ["", *self._token_lines(), "", "Press Ctrl-C to stop."]
        return "\n".join(lines)

    def _temporal_cli_lines(self) -> list[str]:
        """The CLI commands for this server: the plain CLI needs its address spelled
        out (it assumes localhost:7233); ``booking temporal`` adds it by itself."""
        settings = self.settings.model_copy(update={"temporal_address": self.temporal_address})
        scripts = Path(sys.executable).parent
        example = ["workflow", "list", "--query", "BookingStatus='pending_confirmation'"]
        wrapper = command_line([_shown(scripts / "booking"), "temporal", *example])
        plain = command_line(
            [_shown(find_temporal_binary()), *temporal_cli_args(settings, example)]
        )
        return [f"  Temporal CLI  {wrapper}", f"                {plain}"]

    def _token_lines(self) -> list[str]:
        hours = DEMO_TOKEN_TTL.total_seconds() / 3600
        lines = [f"Demo tokens (valid {hours:.0f} h):"]
        for role, user_id in DEMO_USERS.items():
            try:
                token = mint_token(self.settings, subject=user_id, roles=[role], ttl=DEMO_TOKEN_TTL)
            except TokenConfigError as error:
                return [f"Demo tokens: not available ({error})"]
            lines.append(f"  {role.value:<11} {user_id}")
            lines.append(f"    Authorization: Bearer {token}")
        return lines


def _shown(path: Path) -> str:
    """``path`` as a command to type here: relative when under the working directory."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _port_of(address: str) -> int:
    _, _, port = address.rpartition(":")
    try:
        return int(port)
    except ValueError:
        raise DevStackError(
            f"BOOKING_TEMPORAL_ADDRESS must be host:port, got {address!r}"
        ) from None


@contextmanager
def _signals_as_keyboard_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C; the previous handlers come back afterwards."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_further_signals(say: Say) -> None:
    """While stopping, another Ctrl-C must not abandon children half-stopped."""

    def note(signum: int, frame: FrameType | None) -> None:
        say("already stopping; please wait …")

    signal.signal(signal.SIGINT, note)
    signal.signal(signal.SIGTERM, note)
