"""Alembic upgrades run from code (``booking migrate``, ``booking dev``, tests).

From a source checkout the repository's ``alembic.ini`` is used. An installed
package (the container image) has no ``alembic.ini``; there the configuration points
at the installed ``migrations`` package, which carries ``env.py`` and the revisions.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


def alembic_config(database_url: str | None = None, *, configure_logging: bool = True) -> Config:
    """The Alembic configuration; ``database_url`` overrides the settings' URL."""
    if ALEMBIC_INI.is_file():
        config = Config(str(ALEMBIC_INI))
    else:
        import migrations

        config = Config()
        config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    if database_url is not None:
        config.attributes["database_url"] = database_url
    # migrations/env.py applies alembic.ini's logging setup unless told not to.
    config.attributes["configure_logging"] = configure_logging
    return config


def upgrade_to_head(database_url: str | None = None, *, configure_logging: bool = True) -> None:
    """Apply every pending revision.

    Blocking, and it runs its own event loop (the async ``env.py``): call it from
    synchronous code, or from a worker thread when inside an event loop.
    """
    command.upgrade(alembic_config(database_url, configure_logging=configure_logging), "head")
