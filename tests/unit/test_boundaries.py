"""The architecture's import rules and module size: ``core``, ``contracts`` and ``queue``
import no part; the CRM, the ESP and the bridge never import each other nor ``app`` (the
bridge reaches the others only over HTTP); only ``app`` combines parts."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mailshot"
PARTS = ("crm", "esp", "bridge")
#: Shared layers: they serve every part and know none of them.
SHARED = ("core", "contracts", "queue")
#: Every top-level package, so that a new one has to be given a place in these rules.
LAYERS = {*SHARED, *PARTS, "app"}


def _forbidden(package: str) -> tuple[str, ...]:
    others = [p for p in (*PARTS, "app") if p != package]
    return tuple(f"mailshot.{p}" for p in others)


FORBIDDEN = {package: _forbidden(package) for package in (*SHARED, *PARTS)}
#: The CRM's marketing code knows nothing of the sync that reads it.
FORBIDDEN_INSIDE = {
    "crm/models": ("mailshot.crm.sync",),
    "crm/services": ("mailshot.crm.sync",),
}
MAX_LINES = 450
#: Modules allowed over MAX_LINES, each with the reason; the list should only shrink.
#: Alembic revisions are generated, so they are not counted.
OVERSIZED: dict[str, str] = {}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "mailshot":  # from mailshot import crm
                names += [f"mailshot.{a.name}" for a in node.names]
    return names


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "versions" not in p.parts)


def _matches(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_top_level_holds_only_the_known_layers() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    assert packages <= LAYERS, f"place {sorted(packages - LAYERS)} in these rules"
    assert {"core", "queue", "app", *PARTS} <= packages
    top_modules = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top_modules) <= 5, top_modules


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_what_it_must_not(package: str) -> None:
    if not (SRC / package).is_dir():
        pytest.skip(f"no {package} package yet")
    files = _modules(SRC / package)
    assert files, f"no modules found for {package}"
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in files
        for name in _imports(path)
        if _matches(name, FORBIDDEN[package])
    ]
    assert offenders == []


@pytest.mark.parametrize("folder", sorted(FORBIDDEN_INSIDE))
def test_marketing_code_does_not_import_the_sync(folder: str) -> None:
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in _modules(SRC / folder)
        for name in _imports(path)
        if _matches(name, FORBIDDEN_INSIDE[folder])
    ]
    assert offenders == []


def test_only_app_combines_parts() -> None:
    """Outside ``app`` a module imports at most one part: its own."""
    offenders = []
    for path in _modules(SRC):
        package = path.relative_to(SRC).parts[0]
        if package == "app":
            continue
        parts = {n.split(".")[1] for n in _imports(path) if _matches(n, _all_parts())}
        if parts - {package}:
            offenders.append(f"{path.relative_to(SRC)} imports {sorted(parts)}")
    assert offenders == []


def _all_parts() -> tuple[str, ...]:
    return tuple(f"mailshot.{p}" for p in PARTS)


def test_no_module_is_over_the_size_limit() -> None:
    sizes = {
        str(path.relative_to(SRC)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _modules(SRC)
    }
    over = {name: n for name, n in sizes.items() if n > MAX_LINES and name not in OVERSIZED}
    assert over == {}, f"split these modules (at most {MAX_LINES} lines each)"
    stale = sorted(name for name in OVERSIZED if sizes.get(name, 0) <= MAX_LINES)
    assert stale == [], "remove these from OVERSIZED: they fit now"


def test_every_module_opens_with_a_docstring() -> None:
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        if "versions" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if ast.get_docstring(tree) is None and path.stat().st_size > 0:
            missing.append(str(path.relative_to(SRC)))
    assert missing == []
