"""The layering the code relies on: pure translators that import no web framework and do no I/O
(so they can be tested, and reused by every client API, alone)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
# Modules that must stay pure, and everything they import from app/ with them.
PURE = [
    *sorted((APP / "translate").rglob("*.py")),
    APP / "flavours.py",
    APP / "errors.py",
    APP / "wire.py",
    APP / "clock.py",
    APP / "outcomes.py",
]
FORBIDDEN = {
    "flask", "werkzeug", "requests", "urllib3", "http", "socket", "ssl", "gevent",
    "greenlet", "gunicorn", "prometheus_client", "prometheus_flask_exporter", "psutil",
    "subprocess", "threading", "asyncio", "selectors", "urllib.request",
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path.parent)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            found.add(stem)
            # `from . import x` may import a submodule x
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def path_of(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def reachable(start: Path) -> dict[str, str]:
    """Every module reachable from `start` through app's own imports -> who imports it."""
    seen: dict[str, str] = {}
    todo = [start]
    visited: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in visited:
            continue
        visited.add(path)
        for name in imports_of(path):
            seen.setdefault(name, module_name(path))
            if name.split(".")[0] == "app" and (target := path_of(name)) is not None:
                todo.append(target)
    return seen


@pytest.mark.parametrize("path", PURE, ids=module_name)
def test_pure_modules_import_no_framework_and_no_io(path: Path) -> None:
    imported = reachable(path)
    bad = {
        name: by
        for name, by in imported.items()
        if name.split(".")[0] in FORBIDDEN or ".".join(name.split(".")[:2]) in FORBIDDEN
    }
    assert not bad, f"{module_name(path)} reaches {bad}"


def test_the_check_catches_a_flask_import() -> None:
    # The walk itself must see imports: a module that imports Flask is reported.
    sample = ROOT / "app" / "error_handlers.py"
    assert "flask" in {name.split(".")[0] for name in reachable(sample)}
