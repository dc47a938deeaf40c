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


def load_settings() -> Settings:
    """The settings, or a readable list of what is wrong with the environment."""
    try:
        return get_settings()
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


@app.command()
def dev(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed demo service types, consultants and slots.")
    ] = False,
    postgres_port: Annotated[
        int,
        typer.Option(
            envvar="BOOKING_POSTGRES_PORT", help="Port of the embedded PostgreSQL server."
        ),
    ] = 5433,
) -> None:
    """Run PostgreSQL, Temporal (with UI), the worker and the API locally."""
    from booking.devstack.stack import DevStack

    # The step-by-step progress lines say what this process does; its own INFO records
    # would repeat them. The API and the worker keep logging at BOOKING_LOG_LEVEL.
    root = logging.getLogger()
    if root.level == logging.INFO:
        root.setLevel(logging.WARNING)
    settings = load_settings()
    try:
        code = DevStack(settings, postgres_port=postgres_port, demo=demo).run()
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
    """Print a development bearer token (HS256, signed with BOOKING_JWT_SECRET)."""
    from booking.demo import DEMO_USERS

    settings = load_settings()
    subject = sub if sub is not None else DEMO_USERS[role[0]]
    try:
        encoded = mint_token(settings, subject=subject, roles=role, ttl=timedelta(seconds=ttl))
    except TokenConfigError as error:
        fail(str(error))
    typer.echo(encoded)


if __name__ == "__main__":
    app()
