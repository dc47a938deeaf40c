"""Port checks that turn "address already in use" into a message a person can act on."""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from booking.devstack.errors import DevStackError

SUGGESTION_RANGE = 100
"""How far above a taken port to look for a free one to suggest."""


class PortInUseError(DevStackError):
    """A port the stack needs is taken by another process."""


@dataclass(frozen=True)
class PortNeed:
    """A port a local service will listen on, and the setting that moves it."""

    service: str
    host: str
    port: int
    setting: str
    """The ``BOOKING_*`` variable that moves it."""
    option: str
    """The ``booking dev`` option that moves it."""
    value_format: str = "{port}"
    """How the setting spells a port, e.g. ``127.0.0.1:{port}`` for an address."""

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def setting_for(self, port: int) -> str:
        return f"{self.setting}={self.value_format.format(port=port)}"


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


def check_ports(needs: Sequence[PortNeed]) -> None:
    """Raise one :class:`PortInUseError` naming every port that cannot be had.

    A port is refused when another process listens on it, when it cannot be bound
    at all (a privileged port, an unknown host), or when two settings ask for the
    same port. The message proposes free ports for all of them at once, so one
    look at it is enough to fix the configuration.
    """
    problems: list[tuple[PortNeed, str]] = []
    for index, need in enumerate(needs):
        earlier = next((other for other in needs[:index] if other.port == need.port), None)
        if earlier is not None:
            problems.append((need, f"also asked for by {earlier.service} ({earlier.setting})"))
            continue
        try:
            if not is_port_free(need.host, need.port):
                problems.append((need, "in use by another process"))
        except OSError as error:
            problems.append((need, f"cannot be bound: {error.strerror or error}"))
    if problems:
        raise PortInUseError(_describe(problems, needs))


def _describe(problems: Sequence[tuple[PortNeed, str]], needs: Sequence[PortNeed]) -> str:
    count = f"{len(problems)} port{'s' if len(problems) > 1 else ''}"
    lines = [f"cannot start the booking stack: {count} not available"]
    width = max(len(need.address) for need, _ in problems)
    lines += [
        f"  {need.address:<{width}}  {need.service} ({need.setting}): {reason}"
        for need, reason in problems
    ]
    taken = {need.port for need in needs}
    settings: list[str] = []
    options: list[str] = []
    for need, _ in problems:
        port = _suggest(need.host, need.port, taken)
        if port is None:
            continue
        taken.add(port)
        settings.append(need.setting_for(port))
        options.append(f"{need.option} {port}")
    if settings:
        lines += [
            "free ports to move them to, in the environment or .env:",
            f"  {' '.join(settings)}",
            f"or as options: booking dev {' '.join(options)}",
        ]
    return "\n".join(lines)


def _suggest(host: str, port: int, taken: set[int]) -> int | None:
    """The next port above ``port`` that is free now and wanted by no other setting."""
    for candidate in range(port + 1, min(port + SUGGESTION_RANGE, 65535) + 1):
        if candidate in taken:
            continue
        try:
            if is_port_free(host, candidate):
                return candidate
        except OSError:
            return None
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free at the time of the call (for tests; racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
