"""`mailshot keys list|create|disable|enable|rotate` on both sides, straight on the
databases (no server running), as an administrator runs them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from mailshot.app.cli.common import console
from mailshot.app.cli.keys import app
from mailshot.core.settings import Settings
from tests.conftest import Keys

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, keys: Keys, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MAILSHOT_CONFIG", str(settings.data_dir / "none.toml"))
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MAILSHOT_CRM_DATABASE_URL", settings.crm_db_url())
    monkeypatch.setenv("MAILSHOT_ESP_DATABASE_URL", settings.esp_db_url())
    monkeypatch.setattr(console, "width", 250)  # one table row per key
    return settings


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _json(*args: str) -> Any:
    code, out, err = _run(*args, "--json")
    assert code == 0, out + err
    return json.loads(out)


@pytest.mark.parametrize("side", ["crm", "esp"])
def test_the_whole_lifecycle_from_the_command_line(env: Settings, side: str) -> None:
    code, out, err = _run(
        "create",
        "--side",
        side,
        "--name",
        "cli key",
        "--user",
        "bridge@example.com",
        "--permitted-ip",
        "10.0.0.0/8",
        "--until",
        "2099-01-01T00:00:00",
    )
    assert code == 0, out + err
    token = next(w for w in out.split() if w.startswith(f"ms{side}_"))
    assert token.count("_") >= 2 and len(token) > 40
    assert "shown once" in err and "cannot be shown again" in err

    listed = _json("list", "--side", side)
    mine = next(k for k in listed if k["name"] == "cli key")
    assert token.startswith(mine["prefix"])
    assert mine["permitted_ips"] == ["10.0.0.0/8"] and mine["until"].startswith("2099-01-01")
    assert mine["user_email"] == "bridge@example.com" and mine["state"] == "active"
    secret = token[len(mine["prefix"]) :]
    code, table, _ = _run("list", "--side", side)
    assert code == 0
    row = next(line for line in table.splitlines() if mine["prefix"] in line)
    assert "cli key" in row and "bridge@example.com" in row and "active" in row
    assert secret not in json.dumps(listed) and secret not in table

    assert _json("disable", str(mine["id"]), "--side", side)["state"] == "disabled"
    assert _json("enable", mine["prefix"], "--side", side)["state"] == "active"

    code, out, err = _run("rotate", str(mine["id"]), "--side", side, "--overlap-hours", "1")
    assert code == 0, out + err
    new_token = next(w for w in out.split() if w.startswith(f"ms{side}_") and w != mine["prefix"])
    assert new_token != token and "keeps working until" in " ".join(out.split())
    after = {k["id"]: k for k in _json("list", "--side", side)}
    rotated = [k for k in after.values() if k["rotated_from_id"] == mine["id"]]
    assert len(rotated) == 1 and new_token.startswith(rotated[0]["prefix"])
    assert after[mine["id"]]["until"] < mine["until"]  # the overlap ends it sooner


def test_refusals_are_shown_as_errors(env: Settings) -> None:
    code, _, err = _run("disable", "999999")
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = _run("create", "--name", "x", "--user", "nobody@example.com")
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = _run("create", "--name", "x", "--user", "admin@example.com", "--scope", "root")
    assert code == 1 and "VALIDATION_FAILED" in err and "root" in err


@pytest.mark.parametrize(
    ("side", "field"), [("crm", "crm_integration_key"), ("esp", "esp_integration_key")]
)
def test_rotating_a_provisioned_key_updates_the_credentials_file(
    env: Settings, keys: Keys, side: str, field: str
) -> None:
    from pydantic import SecretStr

    from mailshot.core import credentials

    old_token = keys.crm_integration if side == "crm" else keys.esp_integration
    credentials.save(env.credentials_file, credentials.Credentials(**{field: SecretStr(old_token)}))
    listed = _json("list", "--side", side)
    mine = next(k for k in listed if old_token.startswith(k["prefix"]))

    code, out, err = _run("rotate", str(mine["id"]), "--side", side)
    assert code == 0, out + err
    new_token = next(w for w in out.split() if w.startswith(f"ms{side}_"))
    held = getattr(credentials.load(env.credentials_file), field)
    assert held is not None and held.get_secret_value() == new_token != old_token
    assert "credentials.json now holds the new key" in out + err
