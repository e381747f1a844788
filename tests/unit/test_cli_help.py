"""The command line documents itself: every command and every option has help text."""

from __future__ import annotations

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from mailshot import __version__
from mailshot.app.cli.main import app

runner = CliRunner()
GROUP = get_command(app)
assert isinstance(GROUP, TyperGroup)
COMMANDS = sorted(GROUP.commands)


def test_the_documented_commands_exist() -> None:
    expected = {"serve", "worker", "sync", "queue", "migrate", "errors", "version"}
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_and_parameter_has_help(name: str) -> None:
    command = GROUP.commands[name]
    assert (command.help or "").strip(), f"`mailshot {name}` has no help text"
    undocumented = [
        p.name
        for p in command.params
        if p.name != "help" and not (getattr(p, "help", None) or "").strip()
    ]
    assert not undocumented, f"`mailshot {name}` has parameters without help: {undocumented}"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_is_printed(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    first_line = (GROUP.commands[name].help or "").strip().split(".")[0]
    assert " ".join(first_line.split()[:3]) in " ".join(result.output.split())


def test_group_options_have_help() -> None:
    assert (GROUP.help or "").strip()
    assert all((getattr(p, "help", None) or "").strip() for p in GROUP.params if p.name != "help")


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mailshot {__version__}"
