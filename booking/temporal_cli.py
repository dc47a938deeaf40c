"""``booking temporal …``: the bundled Temporal CLI, pointed at the configured server.

The plain CLI talks to ``localhost:7233`` unless told otherwise, so once the dev
stack's ports move (or in any other deployment) its commands silently list another
server's workflows, or none. This wrapper adds ``--address`` and ``--namespace``
from the ``BOOKING_*`` settings, and the TLS options and API key where configured,
to every command that talks to a server.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from core.settings import Settings

CLIENT_COMMANDS = frozenset(
    {"activity", "batch", "nexus", "operator", "schedule", "task-queue", "worker", "workflow"}
)
"""The CLI's commands that connect to a server; the others (``server``, ``config``,
``env``, ``help`` …) refuse connection options."""

_ADDRESS_FLAGS = ("--address",)
_NAMESPACE_FLAGS = ("--namespace", "-n")


def connection_args(settings: Settings) -> list[str]:
    """``--address``, ``--namespace`` and the TLS options of the configured server."""
    args = ["--address", settings.temporal_address, "--namespace", settings.temporal_namespace]
    if settings.temporal_tls or settings.temporal_api_key is not None:
        args.append("--tls")
    for flag, path in (
        ("--tls-cert-path", settings.temporal_tls_client_cert_path),
        ("--tls-key-path", settings.temporal_tls_client_key_path),
        ("--tls-ca-path", settings.temporal_tls_server_ca_path),
    ):
        if path is not None:
            args += [flag, str(path)]
    return args


def temporal_cli_args(settings: Settings, args: Sequence[str]) -> list[str]:
    """The CLI's arguments: ``args`` with the connection options added.

    Added only to commands that connect to a server, and never over an address or
    namespace the caller gave: an explicit ``--namespace other`` still wins. They go
    before a ``--``, after which the CLI reads no more options.
    """
    given = list(args)
    if not given or given[0] not in CLIENT_COMMANDS:
        return given
    added = connection_args(settings)
    if _has_flag(given, _ADDRESS_FLAGS):
        added = _without(added, "--address")
    if _has_flag(given, _NAMESPACE_FLAGS):
        added = _without(added, "--namespace")
    end = given.index("--") if "--" in given else len(given)
    return [*given[:end], *added, *given[end:]]


def temporal_cli_env(settings: Settings, environment: Mapping[str, str]) -> dict[str, str]:
    """The CLI's environment: the API key goes here, not on the command line that
    every user of the machine can read in ``ps``."""
    env = dict(environment)
    if settings.temporal_api_key is not None:
        env["TEMPORAL_API_KEY"] = settings.temporal_api_key.get_secret_value()
    return env


def command_line(args: Sequence[str]) -> str:
    """Words a shell reads back as ``args``; double quotes where they read best
    (a query with single quotes inside), as the README writes them."""
    words = []
    for arg in args:
        quoted = shlex.quote(arg)
        if quoted != arg and not any(char in arg for char in '"$`\\!'):
            quoted = f'"{arg}"'
        words.append(quoted)
    return " ".join(words)


def _has_flag(args: Sequence[str], names: Sequence[str]) -> bool:
    end = args.index("--") if "--" in args else len(args)
    return any(
        arg == name or arg.startswith(f"{name}=") or (len(name) == 2 and arg.startswith(name))
        for arg in args[:end]
        for name in names
    )


def _without(args: list[str], flag: str) -> list[str]:
    index = args.index(flag)
    return args[:index] + args[index + 2 :]
