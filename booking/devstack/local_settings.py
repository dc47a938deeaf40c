"""The settings ``booking dev`` runs with: development defaults for what is left unset.

The service's own defaults are those of production (no secret, no development mode),
so that the image run with nothing configured refuses to start rather than trusting a
secret from the repository. The dev stack is the one place that fills the gaps: the
``development`` environment and an HS256 secret of its own, made once per data
directory and kept there, so the tokens it prints stay valid across restarts while
nobody else knows the secret. Whatever ``BOOKING_*`` sets explicitly still wins.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import model_validator

from core.settings import CommaList, Environment, Settings

LOOPBACK_TARGETS = ("127.0.0.0/8", "::1/128", "localhost")
LOCAL_SECRET_FILE = "jwt-secret"  # noqa: S105  (a file name)
LOCAL_CALENDAR_KEY_FILE = "calendar-key"


def local_jwt_secret(data_dir: Path) -> str:
    """The dev stack's HS256 secret in ``data_dir``, created (mode 0600) on first use."""
    return local_secret(data_dir, LOCAL_SECRET_FILE)


def local_calendar_key(data_dir: Path) -> str:
    """The dev stack's key of linked calendars' secrets, kept beside the JWT secret so
    that calendars linked in one run can still be read in the next."""
    return local_secret(data_dir, LOCAL_CALENDAR_KEY_FILE)


def local_secret(data_dir: Path, file_name: str) -> str:
    """A random secret kept in ``data_dir/file_name``, created (mode 0600) on first use.

    Written to a private temporary file and linked into place, so that two processes
    starting at once agree on one secret and neither reads a half-written file.
    """
    path = data_dir / file_name
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    draft = data_dir / f".{file_name}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass  # another process was first; its secret is the one
    finally:
        draft.unlink()
    return path.read_text().strip()


class DevelopmentSettings(Settings):
    """``Settings`` for ``booking dev`` and ``booking token``.

    Unset, the environment is ``development`` and the secret (and the calendar key) is
    the dev stack's own;
    an explicit ``BOOKING_ENVIRONMENT``, ``BOOKING_JWT_SECRET`` or
    ``BOOKING_JWT_JWKS_URL`` is kept as given (a stack pointed at a real IAM mints no
    local secret).
    """

    environment: Environment = Environment.DEVELOPMENT
    # Receivers and calendar servers a developer runs on this machine.
    webhook_allowed_targets: CommaList = list(LOOPBACK_TARGETS)
    calendar_allowed_targets: CommaList = list(LOOPBACK_TARGETS)

    @model_validator(mode="before")
    @classmethod
    def _local_secret_unless_configured(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        environment = str(data.get("environment", Environment.DEVELOPMENT))
        if environment != Environment.DEVELOPMENT.value:
            return data
        data_dir = Path(str(data.get("data_dir") or Settings.model_fields["data_dir"].default))
        if not data.get("calendar_secret_key"):
            data = {**data, "calendar_secret_key": local_calendar_key(data_dir)}
        if data.get("jwt_secret") or data.get("jwt_jwks_url"):
            return data
        return {**data, "jwt_secret": local_jwt_secret(data_dir)}
