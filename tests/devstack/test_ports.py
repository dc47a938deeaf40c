from __future__ import annotations

import socket

import pytest

from booking.devstack.ports import PortInUseError, ensure_port_free, free_port, is_port_free


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
