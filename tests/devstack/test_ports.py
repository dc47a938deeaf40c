from __future__ import annotations

import re
import socket

import pytest

from booking.devstack.ports import (
    PortInUseError,
    PortNeed,
    check_ports,
    ensure_port_free,
    free_port,
    is_port_free,
)


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert is_port_free("127.0.0.1", port)
    ensure_port_free("127.0.0.1", port, "the API", env_var="BOOKING_API_PORT")


def test_busy_port_names_the_service_and_the_setting() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUseError) as caught:
            ensure_port_free("127.0.0.1", port, "the API", env_var="BOOKING_API_PORT")
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "the API" in message
    assert "BOOKING_API_PORT" in message


def _listener() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


def _need(service: str, port: int, setting: str, option: str) -> PortNeed:
    return PortNeed(service, "127.0.0.1", port, setting, option)


def test_every_taken_port_is_named_at_once_with_free_ones_to_move_to() -> None:
    with _listener() as first, _listener() as second:
        taken = [first.getsockname()[1], second.getsockname()[1]]
        needs = [
            _need("PostgreSQL", taken[0], "BOOKING_POSTGRES_PORT", "--postgres-port"),
            _need("the Temporal UI", free_port(), "BOOKING_TEMPORAL_UI_PORT", "--temporal-ui-port"),
            _need("the API", taken[1], "BOOKING_API_PORT", "--api-port"),
        ]
        with pytest.raises(PortInUseError) as caught:
            check_ports(needs)
        message = str(caught.value)
        assert "2 ports not available" in message
        for port, setting in zip(taken, ("BOOKING_POSTGRES_PORT", "BOOKING_API_PORT"), strict=True):
            assert f"127.0.0.1:{port}" in message
            assert setting in message
        assert "BOOKING_TEMPORAL_UI_PORT" not in message, "a free port is not a conflict"

        suggested = {
            setting: int(value) for setting, value in re.findall(r"(BOOKING_\w+)=(\d+)", message)
        }
        assert set(suggested) == {"BOOKING_POSTGRES_PORT", "BOOKING_API_PORT"}
        assert len(set(suggested.values())) == 2, "two settings never get the same port"
        for port in suggested.values():
            assert port not in {need.port for need in needs}
            assert is_port_free("127.0.0.1", port)
        assert f"--postgres-port {suggested['BOOKING_POSTGRES_PORT']}" in message
        assert f"--api-port {suggested['BOOKING_API_PORT']}" in message


def test_two_settings_with_the_same_port_are_a_conflict() -> None:
    port = free_port()
    needs = [
        _need("the Temporal UI", port, "BOOKING_TEMPORAL_UI_PORT", "--temporal-ui-port"),
        _need("the API", port, "BOOKING_API_PORT", "--api-port"),
    ]
    with pytest.raises(PortInUseError) as caught:
        check_ports(needs)
    assert "the API (BOOKING_API_PORT): also asked for by the Temporal UI" in str(caught.value)


def test_an_address_setting_is_suggested_as_an_address() -> None:
    with _listener() as listener:
        port = listener.getsockname()[1]
        need = PortNeed(
            "the Temporal server",
            "127.0.0.1",
            port,
            "BOOKING_TEMPORAL_ADDRESS",
            "--temporal-port",
            value_format="localhost:{port}",
        )
        with pytest.raises(PortInUseError, match=r"BOOKING_TEMPORAL_ADDRESS=localhost:\d+"):
            check_ports([need])


def test_free_ports_pass() -> None:
    check_ports([_need("the API", free_port(), "BOOKING_API_PORT", "--api-port")])
