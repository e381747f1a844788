"""``/metrics``: queue depth by state, the duration histogram, recipients written, the
heartbeat age and errors by code, in the Prometheus text format, on real databases."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from mailshot.crm.models import SyncJob
from mailshot.db import make_sessionmaker, make_unpooled_engine
from mailshot.settings import Settings
from tests.conftest import Keys
from tests.e2e.data import add_list, add_mailshot, crm_engine


def _samples(
    client: TestClient, path: str = "/metrics"
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_follow_the_queue_and_the_errors(
    client: TestClient, keys: Keys, settings: Settings
) -> None:
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


def test_each_part_serves_its_own_metrics(client: TestClient) -> None:
    """A part served alone (or mounted) answers /metrics for itself only."""
    crm = _samples(client, "/crm/metrics")
    esp = _samples(client, "/esp/metrics")
    assert ("mailshot_sync_jobs", (("state", "queued"),)) in crm
    assert ("mailshot_sync_jobs", (("state", "queued"),)) not in esp
    client.get("/esp/api/v1/campaigns")  # no key: AUTH_MISSING, counted by the ESP only
    esp_after = _samples(client, "/esp/metrics")
    assert esp_after[("mailshot_errors_total", (("code", "AUTH_MISSING"), ("part", "esp")))] >= 1
    crm_after = _samples(client, "/crm/metrics")
    assert ("mailshot_errors_total", (("code", "AUTH_MISSING"), ("part", "esp"))) not in crm_after
