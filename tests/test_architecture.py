"""The dependency direction of DESIGN.md, and the purity of `rules`, enforced."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rules", "lines", "voice", "dialer")

# package -> the project packages it may import
ALLOWED = {
    "rules": set(),
    "lines": {"rules"},
    "voice": {"rules"},
    "dialer": {"rules", "lines", "voice"},
}
# `rules` is pure logic: no I/O, no concurrency, no clocks.
IMPURE_MODULES = {"sqlalchemy", "socket", "asyncio", "threading", "subprocess",
                  "multiprocessing", "time", "pjsua2", "httpx", "requests", "fastapi"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_point_one_way(package: str) -> None:
    forbidden = set(PACKAGES) - ALLOWED[package] - {package}
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & forbidden)
        for path in modules(package)
        if imported_roots(path) & forbidden
    }
    assert not offenders, f"{package} may not import these: {offenders}"


def test_rules_is_pure() -> None:
    offenders = {}
    for path in modules("rules"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        bad = imported_roots(path) & IMPURE_MODULES
        bad |= {
            f"{node.func.attr}()"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
        }
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders, f"rules must stay pure (no I/O, no clock reads): {offenders}"


def test_every_package_is_checked() -> None:
    assert all(modules(package) for package in PACKAGES)
