"""The README opens with the two commands a fresh machine needs, CI runs exactly the
README's test command, and the README's command table names every command."""

from __future__ import annotations

import re
from pathlib import Path

from typer.main import get_command

from mailshot.app.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def _leading_blocks() -> list[str]:
    rest = README.split("\n", 1)[1]
    blocks = []
    pattern = re.compile(r"\A\s*```sh\n(.*?)\n```", re.S)
    while (match := pattern.match(rest)) is not None:
        blocks.append(match.group(1))
        rest = rest[match.end() :]
    return blocks


def test_readme_opens_with_exactly_two_one_line_commands() -> None:
    assert README.startswith("# mailshot\n")
    blocks = _leading_blocks()
    assert len(blocks) == 2, blocks
    assert all("\n" not in b for b in blocks)
    run, test = blocks
    assert run.startswith("python3 -m venv .venv && ")
    assert "pip install -e ." in run and run.endswith("mailshot serve --demo")
    assert test.startswith("python3 -m venv .venv && ")
    assert "install -e '.[dev]'" in test and "pytest" in test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _leading_blocks()[1]
    lines = [line for line in CI.splitlines() if not line.lstrip().startswith("#")]
    assert any(line.startswith(test_command) for line in lines), test_command
    assert CI.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in CI
    assert ".venv/bin/ruff check src tests" in CI and ".venv/bin/mypy src" in CI


def test_readme_names_every_command() -> None:
    group = get_command(app)
    for name in group.commands:
        assert f"`mailshot {name}" in README, name
