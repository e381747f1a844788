"""``mailshot doctor`` when nothing answers: every unreachable part is a failed check with
its code and fix, the verdict is fail and the exit code 1; the table names them too."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from mailshot.app.cli.main import app
from tests.e2e.conftest import free_port


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "MAILSHOT_CONFIG": str(tmp_path / "none.toml"),
        "MAILSHOT_DATA_DIR": str(tmp_path),
        "MAILSHOT_CRM_URL": f"http://127.0.0.1:{port}/crm",
        "MAILSHOT_ESP_URL": f"http://127.0.0.1:{port}/esp",
        "MAILSHOT_API_KEY": "mscrm_abc_secret",
        "MAILSHOT_BRIDGE_CRM_KEY": "mscrm_def_secret",
    }


def test_nothing_answers(tmp_path: Path) -> None:
    env = _env(tmp_path, free_port())
    result = CliRunner().invoke(app, ["doctor", "--json"], env=env)
    assert result.exit_code == 1, result.output
    report = orjson.loads(result.stdout)
    by_check = {c["check"]: c for c in report["checks"]}
    assert report["verdict"] == "fail"
    assert by_check["crm_reachable"]["code"] == "CLI_CRM_UNREACHABLE"
    assert by_check["crm_reachable"]["fix"]
    # No ESP key for the bridge anywhere: named, with where to put one.
    assert by_check["bridge_esp_key"]["code"] == "CLI_BRIDGE_KEY_MISSING"
    assert "MAILSHOT_BRIDGE_ESP_KEY" in by_check["bridge_esp_key"]["fix"]
    assert report["summary"] == by_check["crm_reachable"]["message"]
    assert "secret" not in result.stdout


def test_the_table_shows_each_check(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["doctor"], env=_env(tmp_path, free_port()))
    assert result.exit_code == 1
    assert "crm_reachable" in result.stdout and "FAIL" in result.stdout
