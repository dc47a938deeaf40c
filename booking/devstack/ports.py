"""Port checks that turn "address already in use" into a message a person can act on."""

from __future__ import annotations

import errno
import socket

from booking.devstack.errors import DevStackError


class PortInUseError(DevStackError):
    """A port the stack needs is taken by another process."""


def is_port_free(host: str, port: int) -> bool:
    """Whether a server could bind ``host:port`` right now.

    ``SO_REUSEADDR`` mirrors what servers set, so connections lingering in
    TIME_WAIT from a previous run do not count as "busy"; only a listener does.
    Errors other than "address in use" (no such address, privileged port) propagate.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def ensure_port_free(host: str, port: int, what: str, *, env_var: str | None = None) -> None:
    """Raise :class:`PortInUseError` naming the service and how to move it."""
    try:
        free = is_port_free(host, port)
    except OSError as error:
        check = f" (check {env_var})" if env_var else ""
        raise DevStackError(f"cannot start {what} on {host}:{port}: {error}{check}") from error
    if not free:
        hint = f"; set {env_var} to use another port" if env_var else ""
        raise PortInUseError(
            f"cannot start {what}: {host}:{port} is already in use by another process "
            f"(stop it{hint})"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free at the time of the call (for tests; racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
