"""``booking temporal``: connection options added to the bundled CLI's arguments."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from pydantic import SecretStr

from booking.temporal_cli import command_line, temporal_cli_args, temporal_cli_env
from core.settings import Environment, Settings

SETTINGS = Settings(
    environment=Environment.TEST,
    jwt_secret=SecretStr("temporal-cli-tests-never-verify-a-token-0000"),
    temporal_address="127.0.0.1:17233",
    temporal_namespace="bookings",
)


def test_client_commands_get_the_configured_address_and_namespace() -> None:
    assert temporal_cli_args(SETTINGS, ["workflow", "list", "--query", "X='y'"]) == [
        *("workflow", "list", "--query", "X='y'"),
        *("--address", "127.0.0.1:17233", "--namespace", "bookings"),
    ]


@pytest.mark.parametrize(
    "command",
    [["metadata", "-w", "w-1"], ["describe", "-w", "w-1"], ["count", "--query", "X='y'"]],
)
def test_the_commands_the_readme_gives_operators_reach_the_configured_server(
    command: list[str],
) -> None:
    args = temporal_cli_args(SETTINGS, ["workflow", *command])
    assert args == ["workflow", *command, "--address", "127.0.0.1:17233", "--namespace", "bookings"]


@pytest.mark.parametrize(
    "args",
    [[], ["--version"], ["server", "start-dev"], ["config", "list"], ["help", "workflow"]],
)
def test_commands_without_a_server_are_passed_unchanged(args: list[str]) -> None:
    assert temporal_cli_args(SETTINGS, args) == args


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (["--namespace", "other"], "--address"),
        (["-n", "other"], "--address"),
        (["--namespace=other"], "--address"),
        (["--address", "elsewhere:7233"], "--namespace"),
        (["--address=elsewhere:7233"], "--namespace"),
    ],
)
def test_an_option_the_caller_gave_wins(given: list[str], kept: str) -> None:
    args = temporal_cli_args(SETTINGS, ["workflow", "list", *given])
    assert args[: 2 + len(given)] == ["workflow", "list", *given]
    added = args[2 + len(given) :]
    assert added[0] == kept
    assert len(added) == 2, "only the option the caller did not give is added"


def test_options_go_before_a_double_dash() -> None:
    args = temporal_cli_args(SETTINGS, ["workflow", "start", "--", "--address"])
    assert args[-2:] == ["--", "--address"]
    assert args[2:6] == ["--address", "127.0.0.1:17233", "--namespace", "bookings"]


def test_tls_paths_are_options_and_the_api_key_stays_off_the_command_line() -> None:
    settings = SETTINGS.model_copy(
        update={
            "temporal_tls_client_cert_path": Path("/certs/client.pem"),
            "temporal_tls_client_key_path": Path("/certs/client.key"),
            "temporal_api_key": SecretStr("key-123"),
        }
    )
    args = temporal_cli_args(settings, ["workflow", "list"])
    assert "--tls" in args
    assert args[args.index("--tls-cert-path") + 1] == "/certs/client.pem"
    assert args[args.index("--tls-key-path") + 1] == "/certs/client.key"
    assert "key-123" not in " ".join(args)
    assert temporal_cli_env(settings, {"PATH": "/bin"}) == {
        "PATH": "/bin",
        "TEMPORAL_API_KEY": "key-123",
    }
    assert "--tls" not in temporal_cli_args(SETTINGS, ["workflow", "list"])


@pytest.mark.parametrize(
    "args",
    [
        ["temporal", "workflow", "list", "--query", "BookingStatus='pending_confirmation'"],
        ["temporal", "workflow", "list", "--query", 'A="b" and $c'],
        ["temporal", "plain", "with space"],
    ],
)
def test_shown_command_lines_read_back_as_the_same_arguments(args: list[str]) -> None:
    assert shlex.split(command_line(args)) == args


def test_a_query_is_shown_in_double_quotes() -> None:
    line = command_line(["temporal", "workflow", "list", "--query", "BookingStatus='x'"])
    assert line == "temporal workflow list --query \"BookingStatus='x'\""
