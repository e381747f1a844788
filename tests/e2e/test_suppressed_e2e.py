"""End to end with the real server and a real worker process: two addresses suppressed at
the ESP (an unsubscribe, three soft bounces) are recorded by the CRM per person as
``suppressed_at_esp``, the membership API says so, and the CRM's included / suppressed /
duplicates counts equal the ESP campaign's."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Keys
from tests.e2e.conftest import Crm, ServerFactory, WorkerFactory

pytestmark = pytest.mark.e2e


def test_people_suppressed_at_the_esp_are_recorded_and_counted_alike(
    start_server: ServerFactory, start_worker: WorkerFactory, keys: Keys
) -> None:
    server = start_server(chunk_size=4)
    crm = Crm(server, keys)
    esp = httpx.Client(
        base_url=f"{server.esp}/api/v1",
        headers={"Authorization": f"Bearer {keys.esp_admin}"},
        timeout=30,
    )
    people = [
        crm.http.post(
            "/people", json={"first_name": f"S{i}", "email": f"Sup.{i}@Example.com"}
        ).json()["id"]
        for i in range(10)
    ]
    lst = crm.http.post("/mailing-lists", json={"name": "E2E suppressed"}).json()["id"]
    r = crm.http.post(f"/mailing-lists/{lst}/members", json={"person_ids": people})
    assert r.status_code < 300, r.text
    made = crm.http.post(
        "/mailshots",
        json={
            "name": "Suppressed e2e",
            "subject": "Hello",
            "from_name": "Marketing",
            "from_address": "news@example.com",
            "html": "<p>Hi</p>",
            "audience_source": "mailing_list",
            "mailing_list_id": lst,
        },
    )
    assert made.status_code == 201, made.text
    mailshot = made.json()["id"]

    r = esp.post("/suppressions", json={"email": "sup.2@example.com", "reason": "unsubscribed"})
    assert r.status_code == 201, r.text
    for _ in range(3):
        r = esp.post("/bounces", json={"email": "SUP.7@example.com", "kind": "soft"})
        assert r.status_code == 200, r.text

    start_worker(server)
    crm.synchronise(mailshot)
    status = crm.wait([mailshot])[mailshot]
    assert status["state"] == "synchronised", status

    excluded = crm.http.get(
        f"/sync/jobs/{status['job_id']}/exclusions", params={"reason": "suppressed_at_esp"}
    ).json()["items"]
    assert sorted(e["person_id"] for e in excluded) == [people[2], people[7]]
    for pid in (people[2], people[7]):
        m = crm.http.get(f"/mailshots/{mailshot}/audience/people/{pid}").json()
        assert (m["in_audience"], m["reason"]) == (False, "suppressed_at_esp"), m
        assert m["explanation"].startswith("The ESP will not send to")
    assert crm.http.get(f"/mailshots/{mailshot}/audience/people/{people[3]}").json()["in_audience"]

    campaign = esp.get(f"/integrated-campaigns/{mailshot}").json()
    assert campaign["status"] == "ready"
    included = campaign["audience_count"] - campaign["suppressed_count"]
    assert (status["included"], status["excluded"].get("suppressed_at_esp")) == (
        included,
        campaign["suppressed_count"],
    )
    assert (campaign["audience_count"], campaign["suppressed_count"]) == (10, 2)
    assert status["included"] == status["recipients_synced"] == 8
    assert status["esp_counts"]["duplicate_count"] == campaign["duplicate_count"] == 0
    assert status["counts_agree"] is True
    esp.close()
    crm.http.close()
