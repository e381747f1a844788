"""``/metrics``: queue depth by state, the duration histogram, recipients written, the
heartbeat age and errors by code, in the Prometheus text format, on real databases; and
only for a key with the scope ``metrics`` (or ``admin``), of either part at ``/metrics``,
of the part itself at ``/crm/metrics`` and ``/esp/metrics``."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from typer.testing import CliRunner

from mailshot.app.cli.keys import app as keys_cli
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import SyncJob
from tests.conftest import Keys
from tests.support.e2e_data import add_list, add_mailshot, crm_engine


def _samples(
    client: TestClient, path: str = "/metrics", token: str | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of ``path``, read with ``token`` (default: the header the client has)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_follow_the_queue_and_the_errors(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
    client.headers["Authorization"] = f"Bearer {keys.crm_admin}"  # admin implies metrics
    before = _samples(client)
    assert before[("mailshot_sync_jobs", (("state", "queued"),))] == 0
    assert before[("mailshot_sync_duration_seconds_count", ())] == 0
    assert before[("mailshot_integration_heartbeat_age_seconds", (("part", "crm"),))] == float(
        "inf"
    )

    engine = crm_engine(settings)
    list_id, _ = add_list(engine, "m", 3)
    ids = [add_mailshot(engine, list_id, f"Metrics {n}") for n in range(3)]
    engine.dispose()
    admin = {"Authorization": f"Bearer {keys.crm_admin}"}
    for mailshot_id in ids:
        assert (
            client.post(
                f"/crm/api/v1/mailshots/{mailshot_id}/synchronise", headers=admin
            ).status_code
            == 202
        )
    # Two of them completed: 2 s and 45 s after Synchronise, 3 recipients each.
    sessions = make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))
    with sessions() as s:
        for mailshot_id, took in zip(ids[:2], (2, 45), strict=True):
            job = s.query(SyncJob).filter_by(mailshot_id=mailshot_id).one()
            s.execute(
                update(SyncJob)
                .where(SyncJob.id == job.id)
                .values(
                    state="completed",
                    finished_at=job.requested_at + timedelta(seconds=took),
                    recipients_written=3,
                )
            )
        s.commit()
    client.post(
        "/crm/api/v1/integration/heartbeat",
        json={"worker_id": "w"},
        headers={"Authorization": f"Bearer {keys.crm_integration}"},
    )
    client.get("/crm/api/v1/mailshots/999999/sync", headers=admin)  # NOT_FOUND
    client.get("/crm/api/v1/mailshots", headers={"Authorization": "Bearer nope"})  # malformed

    after = _samples(client)
    assert after[("mailshot_sync_jobs", (("state", "queued"),))] == 1
    assert after[("mailshot_sync_jobs", (("state", "completed"),))] == 2
    assert after[("mailshot_sync_duration_seconds_count", ())] == 2
    assert abs(after[("mailshot_sync_duration_seconds_sum", ())] - 47) < 0.1
    assert after[("mailshot_sync_duration_seconds_bucket", (("le", "2.5"),))] == 1
    assert after[("mailshot_sync_duration_seconds_bucket", (("le", "60.0"),))] == 2
    assert after[("mailshot_recipients_written_total", ())] == 6
    assert after[("mailshot_integration_heartbeat_age_seconds", (("part", "crm"),))] < 60
    assert after[("mailshot_errors_total", (("code", "NOT_FOUND"), ("part", "crm")))] == 1
    assert after[("mailshot_errors_total", (("code", "AUTH_MALFORMED"), ("part", "crm")))] == 1
    assert after[("mailshot_integration_paused", ())] == 0


def test_each_part_serves_its_own_metrics(client: TestClient, keys: Keys) -> None:
    """A part served alone (or mounted) answers /metrics for itself only."""
    crm = _samples(client, "/crm/metrics", keys.crm_admin)
    esp = _samples(client, "/esp/metrics", keys.esp_admin)
    assert ("mailshot_sync_jobs", (("state", "queued"),)) in crm
    assert ("mailshot_sync_jobs", (("state", "queued"),)) not in esp
    client.get("/esp/api/v1/campaigns")  # no key: AUTH_MISSING, counted by the ESP only
    esp_after = _samples(client, "/esp/metrics", keys.esp_admin)
    assert esp_after[("mailshot_errors_total", (("code", "AUTH_MISSING"), ("part", "esp")))] >= 1
    crm_after = _samples(client, "/crm/metrics", keys.crm_admin)
    assert ("mailshot_errors_total", (("code", "AUTH_MISSING"), ("part", "esp"))) not in crm_after


def _cli_key(settings: Settings, monkeypatch: pytest.MonkeyPatch, side: str, *args: str) -> str:
    """A key made with ``mailshot keys create --side <side> ...``; its token."""
    monkeypatch.setenv("MAILSHOT_CONFIG", str(settings.data_dir / "none.toml"))
    monkeypatch.setenv("MAILSHOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MAILSHOT_CRM_DATABASE_URL", settings.crm_db_url())
    monkeypatch.setenv("MAILSHOT_ESP_DATABASE_URL", settings.esp_db_url())
    result = CliRunner().invoke(
        keys_cli, ["create", "--side", side, "--name", "prometheus", *args, "--json"]
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    token: str = json.loads(result.stdout)["token"]
    return token


def test_metrics_need_a_key_with_the_metrics_scope(
    client: TestClient, keys: Keys, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in ("/metrics", "/crm/metrics", "/esp/metrics"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "AUTH_MISSING"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "mailshot_sync_jobs" not in r.text
    for path in ("/metrics", "/crm/metrics"):  # a marketer's key lacks the scope
        r = client.get(path, headers={"Authorization": f"Bearer {keys.crm_marketer}"})
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
        assert "'metrics'" in r.json()["error"]["message"]

    # A key with the scope metrics only, made from the command line as a monitoring
    # system's: it reads the metrics and nothing else.
    crm_metrics = _cli_key(
        settings, monkeypatch, "crm", "--user", "admin@example.com", "--scope", "metrics"
    )
    esp_metrics = _cli_key(
        settings, monkeypatch, "esp", "--user", "admin@example.com", "--scope", "metrics"
    )
    both = _samples(client, "/metrics", crm_metrics)
    assert ("mailshot_sync_jobs", (("state", "queued"),)) in both
    assert ("mailshot_integration_paused", ()) in both
    assert _samples(client, "/metrics", esp_metrics).keys() == both.keys()
    assert ("mailshot_sync_jobs", (("state", "queued"),)) in _samples(
        client, "/crm/metrics", crm_metrics
    )
    assert ("mailshot_integration_paused", ()) in _samples(client, "/esp/metrics", esp_metrics)
    wrong_part = client.get("/esp/metrics", headers={"Authorization": f"Bearer {crm_metrics}"})
    assert wrong_part.json()["error"]["code"] == "AUTH_UNKNOWN_KEY"
    for path in ("/crm/api/v1/mailshots", "/crm/api/v1/users"):
        r = client.get(path, headers={"Authorization": f"Bearer {crm_metrics}"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "AUTH_SCOPE_MISSING"
    r = client.get("/esp/api/v1/campaigns", headers={"Authorization": f"Bearer {esp_metrics}"})
    assert r.status_code == 403
    # Refused at the combined /metrics: recorded by the part that checked the key.
    listed = client.get(
        "/crm/api/v1/key-refusals", headers={"Authorization": f"Bearer {keys.crm_admin}"}
    ).json()["items"]
    assert {("AUTH_MISSING", "/metrics"), ("AUTH_SCOPE_MISSING", "/metrics")} <= {
        (r["reason"], r["path"]) for r in listed
    }
