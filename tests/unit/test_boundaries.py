"""The architecture's import rule: CRM and ESP never import each other, and the bridge
imports neither; it reaches them only over HTTP. The lease queue and the contracts import
no part; the CRM's marketing code does not import its sync."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mailshot"
FORBIDDEN = {
    "crm": ("mailshot.esp", "mailshot.bridge", "mailshot.server", "mailshot.cli"),
    "esp": ("mailshot.crm", "mailshot.bridge", "mailshot.server", "mailshot.cli"),
    "bridge": ("mailshot.crm", "mailshot.esp", "mailshot.server", "mailshot.cli"),
    # The lease queue serves every part's queue: it knows none of them.
    "queue": ("mailshot.crm", "mailshot.esp", "mailshot.bridge", "mailshot.server", "mailshot.cli"),
    # The messages between the parts: every part reads them, they read no part.
    "contracts": (
        "mailshot.crm",
        "mailshot.esp",
        "mailshot.bridge",
        "mailshot.queue",
        "mailshot.server",
        "mailshot.cli",
    ),
    # The CRM's marketing code (people, lists, mailshots ...) knows nothing of the sync.
    "crm/models": ("mailshot.crm.sync",),
    "crm/services": ("mailshot.crm.sync",),
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_part_does_not_import_the_others(part: str) -> None:
    offenders = []
    files = sorted((SRC / part).rglob("*.py"))
    assert files, f"no modules found for {part}"
    for path in files:
        for name in _imports(path):
            if name.startswith(FORBIDDEN[part]):
                offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert offenders == []


def test_every_module_opens_with_a_docstring() -> None:
    missing = []
    for path in sorted(SRC.rglob("*.py")):
        if "versions" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if ast.get_docstring(tree) is None and path.stat().st_size > 0:
            missing.append(str(path.relative_to(SRC)))
    assert missing == []
