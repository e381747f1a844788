"""``mailshot errors --markdown --output FILE``: the catalogue written to a file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mailshot.app.cli.main import app
from mailshot.core.errors import CATALOGUE

runner = CliRunner()


def test_markdown_has_one_row_per_error_and_escapes_pipes(tmp_path: Path) -> None:
    out = tmp_path / "ERRORS.md"
    result = runner.invoke(app, ["errors", "--markdown", "--output", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert sorted(r.split("`")[1] for r in rows) == sorted(CATALOGUE)
    # Code, HTTP, message, fix: four cells in every row, whatever the texts hold.
    assert all(r.replace("\\|", "").count("|") == 5 for r in rows)
    assert text.startswith("# Error catalogue")
