"""``mailshot send CAMPAIGN --wait`` against the real ESP app (in-process, through the
CLI's transport seam) and a real send worker and SMTP server: it starts the send, follows
it to the end and reports the counts, exiting 1 when any recipient failed."""

from __future__ import annotations

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mailshot.app.cli import api
from mailshot.app.cli.main import app
from mailshot.app.server import create_app
from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.integration.test_send_controls import background_worker
from tests.support.sends import campaign, esp_client, people, send_settings
from tests.support.smtpd import Script, smtp_server

runner = CliRunner()


def _invoke(live: Settings, key: str, *args: str) -> tuple[int, str]:
    with TestClient(create_app(live)) as client:
        api.transport = client._transport  # the app itself, in-process
        try:
            result = runner.invoke(
                app,
                ["send", *args],
                env={"MAILSHOT_ESP_API_KEY": key, "MAILSHOT_DATA_DIR": str(live.data_dir)},
            )
        finally:
            api.transport = None
    return result.exit_code, result.output


def test_send_wait_reports_the_counts(settings: Settings, keys: Keys) -> None:
    def rcpt(_conn: int, _n: int, address: str) -> str | None:
        return "550 5.1.1 no such user" if address == "p3@example.org" else None

    with smtp_server(Script(rcpt=rcpt)) as server:
        live = send_settings(settings, server.port)
        with esp_client(live, keys.esp_admin) as esp:
            campaign(esp, 1, people(12))
            campaign(esp, 2, people(5, "ok.example.org"))
        with background_worker(live):
            code, out = _invoke(live, keys.esp_admin, "Campaign 2", "--wait", "--interval", "0.1")
            failed_code, failed_out = _invoke(
                live, keys.esp_admin, "1", "--wait", "--interval", "0.1"
            )
        again_code, again = _invoke(live, keys.esp_admin, "1")
    assert code == 0, out
    assert "sent 5" in out and "failed 0" in out and "in doubt 0" in out
    assert failed_code == 1, failed_out
    assert "sent 11" in failed_out and "failed 1" in failed_out
    assert again_code == 1 and "SEND_ALREADY_EXISTS" in again
    assert len(server.received) == 16
