"""The ``booking`` command: local stack, servers, migrations, setup and dev tokens.

Configuration comes from ``BOOKING_*`` environment variables (see core/settings.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

from booking.devstack.errors import DevStackError
from booking.logs import configure_logging
from booking.tokens import Role, TokenConfigError, mint_token
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from booking.temporal_setup import SetupOutcome

app = typer.Typer(
    name="booking",
    help="Booking & Consultation Service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def finish(code: int = 0) -> NoReturn:
    """End a command that used a Temporal client, skipping interpreter finalization.

    The Temporal SDK's native runtime keeps threads that may touch Python objects
    while the interpreter finalizes, which aborts the process now and then
    (temporalio/sdk-python#300). By this point every resource is closed, so after
    flushing the output nothing is lost by leaving at once. Only done when this
    module is the program (``booking …`` or ``python -m booking.cli``), never when a
    test invokes the app in-process.
    """
    if getattr(sys.modules["__main__"], "app", None) is app:
        exit_without_finalizing(code)
    raise typer.Exit(code)


def exit_without_finalizing(code: int) -> NoReturn:
    """Flush the logs and output, then leave at once (see ``finish`` for why); also
    for other programs that run a Temporal worker, such as the benchmark workers."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def load_settings(kind: type[Settings] = Settings) -> Settings:
    """The settings, or a readable list of what is wrong with the environment.

    ``kind`` is ``DevelopmentSettings`` for the commands meant for a developer's machine
    (``dev``, ``token``) and for ``temporal``, which verifies no token; every other
    command gets the production defaults.
    """
    try:
        return get_settings() if kind is Settings else kind()
    except ValidationError as error:
        problems = "\n".join(
            f"  {'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
            for item in error.errors()
        )
        fail(f"invalid configuration (BOOKING_* environment variables):\n{problems}", code=2)


@app.callback()
def main(
    log_level: Annotated[
        str, typer.Option("--log-level", envvar="BOOKING_LOG_LEVEL", help="Logging level.")
    ] = "INFO",
) -> None:
    configure_logging(log_level)


def _default(field: str) -> object:
    return Settings.model_fields[field].default


@app.command()
def dev(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed demo service types, consultants and slots.")
    ] = False,
    api_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            envvar="BOOKING_API_PORT",
            help=f"Port of the HTTP API (default {_default('api_port')}).",
        ),
    ] = None,
    postgres_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            envvar="BOOKING_POSTGRES_PORT",
            help=f"Port of the embedded PostgreSQL (default {_default('postgres_port')}; "
            "none runs when BOOKING_DATABASE_URL is set).",
        ),
    ] = None,
    temporal_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            help="Port of the Temporal frontend (gRPC); its setting is the port of "
            f"BOOKING_TEMPORAL_ADDRESS (default {_default('temporal_address')}).",
        ),
    ] = None,
    temporal_ui_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            metavar="PORT",
            envvar="BOOKING_TEMPORAL_UI_PORT",
            help=f"Port of the Temporal Web UI (default {_default('temporal_ui_port')}).",
        ),
    ] = None,
) -> None:
    """Run PostgreSQL, Temporal (with UI), the worker and the API locally.

    Every port is checked before anything starts; each option below moves one, as
    does its BOOKING_* variable (in the environment or .env).
    """
    from booking.devstack.local_settings import DevelopmentSettings
    from booking.devstack.stack import DevStack

    # The step-by-step progress lines say what this process does; its own INFO records
    # would repeat them. The API and the worker keep logging at BOOKING_LOG_LEVEL.
    root = logging.getLogger()
    if root.level == logging.INFO:
        root.setLevel(logging.WARNING)
    settings = load_settings(DevelopmentSettings)
    # An option wins over the settings; unset, the settings (environment, .env) decide.
    overrides: dict[str, object] = {}
    if api_port is not None:
        overrides["api_port"] = api_port
    if postgres_port is not None:
        overrides["postgres_port"] = postgres_port
    if temporal_ui_port is not None:
        overrides["temporal_ui_port"] = temporal_ui_port
    if temporal_port is not None:
        host = settings.temporal_address.rpartition(":")[0] or "127.0.0.1"
        overrides["temporal_address"] = f"{host}:{temporal_port}"
    try:
        code = DevStack(settings.model_copy(update=overrides), demo=demo).run()
    except DevStackError as error:
        fail(str(error))
    finish(code)


@app.command()
def api() -> None:
    """Serve the HTTP API (uvicorn) on BOOKING_API_HOST:BOOKING_API_PORT."""
    import uvicorn

    from booking.devstack.ports import ensure_port_free

    settings = load_settings()
    try:
        ensure_port_free(
            settings.api_host, settings.api_port, "the API", env_var="BOOKING_API_PORT"
        )
    except DevStackError as error:
        fail(str(error))
    uvicorn.run("api.app:create_app", factory=True, host=settings.api_host, port=settings.api_port)
    finish()


@app.command()
def worker() -> None:
    """Run the Temporal worker until SIGINT/SIGTERM."""
    from worker import run_worker

    settings = load_settings()
    if settings.database_url is None:
        fail("BOOKING_DATABASE_URL is not set (or run everything with `booking dev`)")
    asyncio.run(run_worker(settings))
    finish()


@app.command("worker-health")
def worker_health() -> None:
    """Exit 0 while the worker on this host beats (BOOKING_WORKER_HEALTH_FILE), 1 when
    its heartbeat is missing or stale: a container health check."""
    from datetime import UTC, datetime

    from core.worker_health import heartbeat_problem

    settings = load_settings()
    path = settings.worker_health_file
    if path is None:
        fail("BOOKING_WORKER_HEALTH_FILE is not set: the worker writes no heartbeat", code=2)
    try:
        text: str | None = path.read_text()
    except FileNotFoundError:
        text = None
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror}")
    problem = heartbeat_problem(
        text, now=datetime.now(UTC), interval=settings.worker_health_interval
    )
    if problem is not None:
        fail(f"unhealthy: {problem}")
    typer.echo("healthy", err=True)


@app.command()
def migrate() -> None:
    """Apply the database migrations (alembic upgrade head)."""
    from booking.migrate import upgrade_to_head

    settings = load_settings()
    if settings.database_url is None:
        fail("BOOKING_DATABASE_URL is not set")
    upgrade_to_head(settings.database_url)
    typer.echo("database is up to date", err=True)


@app.command()
def setup() -> None:
    """Prepare the Temporal namespace (idempotent): the custom search attributes, how
    long closed workflows are kept, and the retention sweep's schedule."""
    settings = load_settings()
    outcome = asyncio.run(_set_up_temporal(settings))
    added = outcome.search_attributes_added
    typer.echo(
        f"registered: {', '.join(added)}" if added else "search attributes already registered",
        err=True,
    )
    typer.echo(
        f"closed workflows kept for {settings.temporal_namespace_retention}; retention sweep "
        f"schedule {'created' if outcome.retention_schedule_created else 'updated'} "
        f"(every {settings.retention_sweep_interval})",
        err=True,
    )
    finish()


async def _set_up_temporal(settings: Settings) -> SetupOutcome:
    from booking.temporal_setup import set_up_temporal
    from integrations.temporal_client import connect_temporal

    client = await connect_temporal(settings)
    return await set_up_temporal(client, settings)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def temporal(ctx: typer.Context) -> None:
    """The bundled Temporal CLI, given the configured --address and --namespace:
    `booking temporal workflow list`."""
    from booking.devstack.local_settings import DevelopmentSettings
    from booking.devstack.temporal import find_temporal_binary
    from booking.temporal_cli import temporal_cli_args, temporal_cli_env

    # It needs no token verification, so the dev stack's defaults fill what is unset.
    settings = load_settings(DevelopmentSettings)
    try:
        binary = find_temporal_binary()
    except DevStackError as error:
        fail(str(error))
    args = temporal_cli_args(settings, ctx.args)
    # Replaced by the CLI: its exit code, output and Ctrl-C are the command's own.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(binary, [str(binary), *args], temporal_cli_env(settings, os.environ))  # noqa: S606


@app.command()
def token(
    role: Annotated[
        list[Role], typer.Option("--role", help="Role claim; repeat for several roles.")
    ],
    sub: Annotated[
        uuid.UUID | None,
        typer.Option(help="User id (sub). Default: the demo user of the first role."),
    ] = None,
    ttl: Annotated[int, typer.Option(min=1, help="Lifetime in seconds.")] = 3600,
) -> None:
    """Print a development bearer token (HS256, signed with BOOKING_JWT_SECRET, or else
    with the secret of the dev stack in BOOKING_DATA_DIR)."""
    from booking.demo import DEMO_USERS
    from booking.devstack.local_settings import DevelopmentSettings

    settings = load_settings(DevelopmentSettings)
    subject = sub if sub is not None else DEMO_USERS[role[0]]
    try:
        encoded = mint_token(settings, subject=subject, roles=role, ttl=timedelta(seconds=ttl))
    except TokenConfigError as error:
        fail(str(error))
    typer.echo(encoded)


if __name__ == "__main__":
    app()
