"""`mailshot migrate`, `mailshot provision` and `mailshot demo` as a user runs them: on both
backends, twice, and against a database that cannot be reached."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mailshot.core import credentials
from mailshot.core.settings import Settings

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MAILSHOT_CRM_DATABASE_URL", settings.crm_db_url())
    monkeypatch.setenv("MAILSHOT_ESP_DATABASE_URL", settings.esp_db_url())
    return settings


def _run(*args: str) -> tuple[int, str]:
    from mailshot.app.cli.main import app

    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_provision_then_again(env: Settings) -> None:
    code, out = _run("provision")
    assert code == 0, out
    assert "Created: CRM admin user" in out and "admin@example.com" in out
    assert "shown only this once" in out
    assert credentials.load(env.credentials_file).cli_key is not None

    code, out = _run("provision")
    assert code == 0
    assert out == "Already provisioned: nothing to do."


def test_migrate_says_both_databases_are_up_to_date(env: Settings) -> None:
    code, out = _run("migrate")
    assert code == 0, out
    assert "CRM database" in out and "ESP database" in out and out.count("up to date") == 2
    assert "password" not in out


def test_demo_then_again(env: Settings) -> None:
    code, out = _run("demo", "--people", "40")
    assert code == 0, out
    assert "Loaded 40 people" in out and "Demo: April newsletter" in out
    code, out = _run("demo", "--people", "40")
    assert code == 0
    assert "already there" in out


def test_an_unreachable_database_is_named_with_a_fix(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MAILSHOT_CRM_DATABASE_URL", "postgresql://nobody:s3cret@127.0.0.1:1/none")
    code, out = _run("migrate")
    assert code == 1
    assert "DATABASE_UNREACHABLE: Cannot open the CRM database at" in out
    assert "s3cret" not in out
    assert "Fix: Check MAILSHOT_CRM_DATABASE_URL" in out


def test_invalid_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSHOT_PORT", "not-a-port")
    code, out = _run("migrate")
    assert code == 1
    assert "SETTINGS_INVALID" in out and "port" in out
