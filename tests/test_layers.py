"""The house's layers: no import runs back up.

From the bottom: ``core`` (settings and vocabulary) imports nothing else of the
project; ``db`` only ``core``; ``integrations`` the two below; the workflow only
``core`` (its sandbox must load nothing with I/O); activities the layers below and
the workflow's contracts (their inputs and outputs), never the workflow itself; the
API and the worker the layers below; the application shell (``booking``) and the
benchmarks anything. Read from the source with ``ast``, so a function-level import
counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BELOW_EVERYTHING = {"core"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "db": {"core"},
    "migrations": {"core", "db"},
    "integrations": {"core", "db"},
    "workflows": {"core"},
    "activities": {"core", "db", "integrations", "workflows.contracts"},
    "api": {"core", "db", "integrations", "workflows"},
    "worker": {"core", "db", "integrations", "workflows", "activities"},
    "booking": {
        "core",
        "db",
        "migrations",
        "integrations",
        "workflows",
        "activities",
        "api",
        "worker",
    },
}
PROJECT_PACKAGES = {*ALLOWED, "bench", "tests"}

WORKFLOW_SANDBOX_MODULES = (
    "workflows.consultation",
    "workflows.handlers",
    "workflows.calls",
    "workflows.rules",
    "workflows.state",
    "workflows.timeline",
    "workflows.presentation",
    "workflows.search_attributes",
    "workflows.health",
    "workflows.retention",
    "workflows.export",
    "workflows.erasure",
    "workflows.calendar_sync",
)
"""What the sandbox loads for every workflow; none of it may reach I/O libraries."""
IO_LIBRARIES = {"sqlalchemy", "asyncpg", "httpx", "fastapi", "pydantic_settings"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source_files() -> Iterator[Path]:
    for package in ALLOWED:
        single = ROOT / f"{package}.py"
        if single.exists():
            yield single
        yield from sorted((ROOT / package).rglob("*.py"))


def _imports(path: Path, *, at_run_time_only: bool = False) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in _walk(tree, at_run_time_only):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def _walk(node: ast.AST, at_run_time_only: bool) -> Iterator[ast.AST]:
    """``ast.walk``, optionally skipping ``if TYPE_CHECKING:`` blocks."""
    yield node
    for child in ast.iter_child_nodes(node):
        if at_run_time_only and _is_type_checking_block(child):
            continue
        yield from _walk(child, at_run_time_only)


def _is_type_checking_block(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    )


def _layer(module: str) -> str:
    return module.split(".")[0]


def _permitted(importer: str, imported: str) -> bool:
    own = _layer(importer)
    if _layer(imported) == own:
        return True
    return any(
        imported == allowed or imported.startswith(allowed + ".") for allowed in ALLOWED[own]
    )


def test_no_import_runs_back_up_a_layer() -> None:
    violations = [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for path in _source_files()
        for line, imported in _imports(path)
        if _layer(imported) in PROJECT_PACKAGES and not _permitted(_module_name(path), imported)
    ]
    assert violations == []


@pytest.mark.parametrize("module", WORKFLOW_SANDBOX_MODULES)
def test_workflow_code_reaches_no_io_library(module: str) -> None:
    """Followed through the project's own imports: what the workflow imports, and
    what those import, stays free of database, HTTP and settings code (imports for
    the type checker only do not run)."""
    seen: set[str] = set()
    pending = [module]
    reached_io: list[str] = []
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        path = ROOT / Path(*current.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not path.exists():
            continue
        for _, imported in _imports(path, at_run_time_only=True):
            if _layer(imported) in IO_LIBRARIES:
                reached_io.append(f"{current} imports {imported}")
            elif _layer(imported) in PROJECT_PACKAGES:
                pending.append(imported)
    assert reached_io == []


def test_the_check_sees_a_violation() -> None:
    """The rules themselves: a database module importing the API would be refused."""
    assert not _permitted("db.models", "api.errors")
    assert not _permitted("activities.requests", "workflows.consultation")
    assert _permitted("activities.requests", "workflows.contracts.activity_io")
    assert not _permitted("core.settings", "db.engine")
