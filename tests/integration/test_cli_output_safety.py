"""What the CLI prints from data cannot drive the terminal: a mailshot named with ANSI
escapes, C1 controls, a bidirectional override, a newline and Rich markup is shown with
those characters escaped, in ``doctor``, ``sync``, ``queue`` (tables and ``--json``) and in
an error, against the real CRM and ESP (their ASGI app, through the CLI's HTTP client)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mailshot.app.cli import api as cli_api
from mailshot.app.cli.main import app
from mailshot.core.settings import Settings
from tests.conftest import Keys

EVIL = "Evil\x1b[2J\x1b]0;owned\x07\x9b31m\u202egnp.exe\nFORGED [bold red]markup[/]"
#: A terminal acts on these; none may reach it from data.
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def cli_env(
    client: TestClient, keys: Keys, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    monkeypatch.setattr(cli_api, "transport", client._transport)
    yield {
        "MAILSHOT_CONFIG": str(settings.data_dir / "none.toml"),
        "MAILSHOT_DATA_DIR": str(settings.data_dir),
        "MAILSHOT_CRM_URL": "http://testserver/crm",
        "MAILSHOT_ESP_URL": "http://testserver/esp",
        "MAILSHOT_API_KEY": keys.crm_admin,
        "MAILSHOT_BRIDGE_CRM_KEY": keys.crm_integration,
        "MAILSHOT_BRIDGE_ESP_KEY": keys.esp_integration,
        "COLUMNS": "400",
    }


def _evil_mailshot(client: TestClient, keys: Keys) -> int:
    made = client.post(
        "/crm/api/v1/mailshots",
        json={"name": EVIL, "subject": "Hi", "from_name": "M", "from_address": "m@example.com"},
        headers={"Authorization": f"Bearer {keys.crm_admin}"},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _run(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.output


def _assert_safe(output: str) -> None:
    found = UNSAFE.search(output)
    assert found is None, f"{found.group()!r} reached the terminal: {output!r}"
    assert "FORGED" not in [line.strip()[:6] for line in output.splitlines()]


def test_doctor_shows_a_hostile_name_escaped(
    client: TestClient, keys: Keys, cli_env: dict[str, str]
) -> None:
    mailshot = _evil_mailshot(client, keys)
    table = _run(cli_env, "doctor", str(mailshot))
    _assert_safe(table)
    assert "\\x1b[2J" in table and "\\u202e" in table and "\\x9b" in table
    assert "[boldred]markup[/]" in "".join(table.split())  # shown, not read as markup
    as_json = _run(cli_env, "doctor", str(mailshot), "--json")
    _assert_safe(as_json)
    assert orjson.loads(as_json)["mailshot_name"] == EVIL  # the JSON still says it exactly


def test_sync_queue_and_errors_show_a_hostile_name_escaped(
    client: TestClient, keys: Keys, cli_env: dict[str, str]
) -> None:
    mailshot = _evil_mailshot(client, keys)
    refused = _run(cli_env, "sync", str(mailshot))  # refused by preflight: no audience
    _assert_safe(refused)
    assert "SYNC_PREFLIGHT_FAILED" in refused
    missing = _run(cli_env, "sync", EVIL + "?")  # not found: the error repeats the name
    _assert_safe(missing)
    assert "\\x1b[2J" in missing
    for args in (("queue",), ("queue", "--json")):
        _assert_safe(_run(cli_env, *args))
