"""``mailshot errors``: the whole catalogue, from every part, as a table or as Markdown."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mailshot.app.cli.admin import catalogue_markdown, load_catalogue
from mailshot.app.cli.main import app
from mailshot.core.errors import CATALOGUE, ErrorSpec

runner = CliRunner()


def test_every_part_is_in_the_catalogue() -> None:
    specs = load_catalogue()
    codes = {s.code for s in specs}
    # One code from each module that defines errors: shared, keys, CRM, ESP, sync, CLI.
    for code in (
        "VALIDATION_FAILED",
        "AUTH_KEY_EXPIRED",
        "CAMPAIGN_NAME_TOO_LONG",
        "CLI_NO_API_KEY",
    ):
        assert code in codes
    assert {s.part for s in specs} >= {"common", "crm", "esp", "cli"}
    assert len(specs) == len(CATALOGUE)


def test_markdown_to_stdout_matches_the_file_form() -> None:
    result = runner.invoke(app, ["errors", "--markdown"])
    assert result.exit_code == 0
    assert result.stdout == catalogue_markdown(load_catalogue())


def test_a_pipe_in_a_text_does_not_break_the_table() -> None:
    spec = ErrorSpec("X_PIPE", 400, "a | b", "c | d", part="test")
    text = catalogue_markdown([spec])
    assert "| `X_PIPE` | 400 | a \\| b | c \\| d |" in text


def test_the_table_lists_codes_and_fixes() -> None:
    result = runner.invoke(app, ["errors"])
    assert result.exit_code == 0
    assert "AUTH_KEY_EXPIRED" in result.output and "CLI_SYNC_TIMEOUT" in result.output


def test_docs_errors_md_is_up_to_date() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "ERRORS.md"
    expected = catalogue_markdown(load_catalogue())
    assert doc.is_file() and doc.read_text(encoding="utf-8") == expected, (
        "docs/ERRORS.md differs from the error catalogue: run `make docs` "
        "(mailshot errors --markdown --output docs/ERRORS.md)"
    )
