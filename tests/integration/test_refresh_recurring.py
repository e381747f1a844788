"""A Refresh Recurring mailshot takes in a person added to its list and drops one removed,
at its next refresh: the scheduler's tick is driven with a fake clock, and the syncs are
worked by the real bridge code (in-process HTTP clients of the real CRM and ESP)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailshot.bridge.worker import WorkerPool
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.sync import refresh
from tests.conftest import Keys
from tests.support.inprocess_bridge import in_process_pool, work_all


@pytest.fixture
def pool(client: TestClient, keys: Keys) -> WorkerPool:
    return in_process_pool(client.app, keys)


def esp_audience(client: TestClient, keys: Keys, mailshot_id: int) -> set[int]:
    h = {"Authorization": f"Bearer {keys.esp_admin}"}
    campaign = client.get(f"/esp/api/v1/integrated-campaigns/{mailshot_id}", headers=h).json()
    url = f"/esp/api/v1/campaigns/{campaign['id']}/recipients"
    items = client.get(url, params={"limit": 1000}, headers=h).json()["items"]
    return {int(i["crm_person_id"]) for i in items}


def test_a_recurring_mailshot_follows_its_list_at_each_refresh(
    client: TestClient, keys: Keys, settings: Settings, pool: WorkerPool
) -> None:
    h = {"Authorization": f"Bearer {keys.crm_admin}"}
    api = "/crm/api/v1"

    def post(path: str, body: dict[str, Any]) -> Any:
        r = client.post(f"{api}/{path}", json=body, headers=h)
        assert r.status_code in (200, 201, 202), r.text
        return r.json()

    people = [
        post("people", {"first_name": f"P{i}", "email": f"p{i}@example.com"})["id"]
        for i in range(3)
    ]
    ml = post("mailing-lists", {"name": "Weekly"})
    post(f"mailing-lists/{ml['id']}/members", {"person_ids": people[:2]})
    ms = post(
        "mailshots",
        {
            "name": "Weekly news",
            "subject": "News",
            "from_name": "Us",
            "from_address": "us@example.com",
            "html": "<p>Hi</p>",
            "mailing_list_id": ml["id"],
            "mailshot_type": "refresh_recurring",
            "refresh_period_hours": 24,
        },
    )
    post(f"mailshots/{ms['id']}/synchronise", {})
    work_all(pool)
    first = client.get(f"{api}/mailshots/{ms['id']}/sync", headers=h).json()
    assert first["state"] == "synchronised", first
    assert esp_audience(client, keys, ms["id"]) == set(people[:2])

    # The list changes: the third person joins, the second leaves.
    post(f"mailing-lists/{ml['id']}/members", {"person_ids": [people[2]]})
    gone = client.delete(f"{api}/mailing-lists/{ml['id']}/members/{people[1]}", headers=h)
    assert gone.status_code == 204

    engine = make_unpooled_engine(settings.crm_db_url())
    sessions = make_sessionmaker(engine)
    now = utcnow()
    with sessions() as s:
        # Before the period has passed nothing is due, and a static mailshot never is.
        assert refresh.tick(s, chunk_size=100, now=now + timedelta(hours=23)) == []
        queued = refresh.tick(s, chunk_size=100, now=now + timedelta(hours=25))
    assert [q.mailshot_id for q in queued] == [ms["id"]]
    work_all(pool)
    second = client.get(f"{api}/mailshots/{ms['id']}/sync", headers=h).json()
    assert second["state"] == "synchronised" and second["job_id"] == queued[0].job_id
    assert esp_audience(client, keys, ms["id"]) == {people[0], people[2]}

    with sessions() as s:
        # The next refresh counts from this one's request; a closed mailshot stops.
        assert refresh.tick(s, chunk_size=100, now=now + timedelta(hours=26)) == []
    client.patch(f"{api}/mailshots/{ms['id']}", json={"status": "closed"}, headers=h)
    with sessions() as s:
        assert refresh.tick(s, chunk_size=100, now=now + timedelta(days=30)) == []
    engine.dispose()


def test_the_bridge_asks_for_refreshes_over_http(client: TestClient, keys: Keys) -> None:
    r = client.post(
        "/crm/api/v1/sync/refresh", headers={"Authorization": f"Bearer {keys.crm_integration}"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"queued": []}
    refused = client.post(
        "/crm/api/v1/sync/refresh", headers={"Authorization": f"Bearer {keys.crm_marketer}"}
    )
    assert refused.status_code == 403
