"""Addresses the ESP suppresses (an unsubscribe, three soft bounces) are recorded by the CRM
per person as ``suppressed_at_esp`` after a sync, the membership API says so, and the
CRM's included / suppressed / duplicates counts equal the ESP campaign's. The sync is
worked by the real bridge code over in-process HTTP clients of the real CRM and ESP."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from mailshot.bridge.worker import WorkerPool
from tests.conftest import Keys
from tests.support.inprocess_bridge import in_process_pool, work_all

CRM = "/crm/api/v1"
ESP = "/esp/api/v1"


@pytest.fixture
def pool(client: TestClient, keys: Keys) -> WorkerPool:
    return in_process_pool(client.app, keys)


class Api:
    def __init__(self, client: TestClient, keys: Keys) -> None:
        self.client = client
        self.crm_h = {"Authorization": f"Bearer {keys.crm_admin}"}
        self.esp_h = {"Authorization": f"Bearer {keys.esp_admin}"}

    def crm(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, f"{CRM}/{path}", headers=self.crm_h, **kw)
        assert r.status_code < 300, r.text
        return r.json()

    def esp(self, method: str, path: str, **kw: Any) -> Any:
        r = self.client.request(method, f"{ESP}/{path}", headers=self.esp_h, **kw)
        assert r.status_code < 300, r.text
        return r.json()


def _mailshot(api: Api) -> tuple[int, list[int]]:
    """A list of six people (one of whom has opted out) and a mailshot of it."""
    people = [
        api.crm("POST", "people", json={"first_name": f"P{i}", "email": f"p{i}@example.com"})["id"]
        for i in range(6)
    ]
    opted = api.crm(
        "POST", "people", json={"first_name": "No", "email": "no@example.com", "no_email": True}
    )["id"]
    lst = api.crm("POST", "mailing-lists", json={"name": "Suppressed test"})["id"]
    api.crm("POST", f"mailing-lists/{lst}/members", json={"person_ids": [*people, opted]})
    mailshot = api.crm(
        "POST",
        "mailshots",
        json={
            "name": "Suppressed test",
            "subject": "Hello",
            "from_name": "Marketing",
            "from_address": "news@example.com",
            "html": "<p>Hi</p>",
            "audience_source": "mailing_list",
            "mailing_list_id": lst,
        },
    )["id"]
    return int(mailshot), people


def test_suppressed_people_are_recorded_and_the_counts_agree(
    client: TestClient, keys: Keys, pool: WorkerPool
) -> None:
    api = Api(client, keys)
    mailshot, people = _mailshot(api)
    api.esp("POST", "suppressions", json={"email": "P0@Example.com", "reason": "unsubscribed"})
    for _ in range(3):
        api.esp("POST", "bounces", json={"email": "p1@example.com", "kind": "soft"})
    for _ in range(2):  # below the limit: still mailed
        api.esp("POST", "bounces", json={"email": "p2@example.com", "kind": "soft"})

    api.crm("POST", f"mailshots/{mailshot}/synchronise")
    work_all(pool)
    # prepare, one chunk, finalize: each done at its first try.
    assert pool.counts == {"done": 3, "retried": 0, "failed": 0, "lost": 0}

    status = api.crm("GET", f"mailshots/{mailshot}/sync")
    assert status["state"] == "synchronised", status
    job = status["job_id"]
    excluded = api.crm("GET", f"sync/jobs/{job}/exclusions", params={"limit": 100})["items"]
    by_reason = {(e["person_id"], e["reason"]) for e in excluded}
    assert (people[0], "suppressed_at_esp") in by_reason
    assert (people[1], "suppressed_at_esp") in by_reason
    assert sum(1 for e in excluded if e["reason"] == "suppressed_at_esp") == 2

    for pid in people[:2]:
        m = api.crm("GET", f"mailshots/{mailshot}/audience/people/{pid}")
        assert (m["in_audience"], m["reason"]) == (False, "suppressed_at_esp"), m
        assert "The ESP will not send to" in m["explanation"]
    assert api.crm("GET", f"mailshots/{mailshot}/audience/people/{people[2]}")["in_audience"]

    campaign = api.esp("GET", f"integrated-campaigns/{mailshot}")
    assert (campaign["audience_count"], campaign["suppressed_count"]) == (6, 2)
    assert status["included"] == campaign["audience_count"] - campaign["suppressed_count"] == 4
    assert status["excluded"]["suppressed_at_esp"] == campaign["suppressed_count"]
    assert status["excluded"] == {"opted_out": 1, "suppressed_at_esp": 2}
    assert status["esp_counts"] == {
        "audience_count": campaign["audience_count"],
        "suppressed_count": campaign["suppressed_count"],
        "duplicate_count": campaign["duplicate_count"],
    }
    assert campaign["duplicate_count"] == 0
    assert status["counts_agree"] is True
    assert (status["recipients_synced"], status["recipients_excluded"]) == (4, 3)
    assert "2 of them because the ESP suppresses their address" in status["summary"]

    # The ESP's listing, paged one at a time, names the same two people with the ESP's reason.
    seen: list[tuple[int, str, str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1, "snapshot": job}
        if cursor:
            params["cursor"] = cursor
        page = api.esp("GET", f"integrated-campaigns/{mailshot}/suppressed", params=params)
        seen += [(i["crm_person_id"], i["email"], i["reason"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [
        (people[0], "p0@example.com", "unsubscribed"),
        (people[1], "p1@example.com", "bounced"),
    ]


def test_a_lifted_suppression_is_gone_at_the_next_sync(
    client: TestClient, keys: Keys, pool: WorkerPool
) -> None:
    api = Api(client, keys)
    mailshot, people = _mailshot(api)
    api.esp("POST", "suppressions", json={"email": "p3@example.com", "reason": "bounced"})
    api.crm("POST", f"mailshots/{mailshot}/synchronise")
    work_all(pool)
    first = api.crm("GET", f"mailshots/{mailshot}/sync")
    assert (first["included"], first["excluded"].get("suppressed_at_esp")) == (5, 1)

    r = client.delete(f"{ESP}/suppressions/p3@example.com", headers=api.esp_h)
    assert r.status_code == 204, r.text
    api.crm("POST", f"mailshots/{mailshot}/synchronise")
    work_all(pool)
    second = api.crm("GET", f"mailshots/{mailshot}/sync")
    assert second["state"] == "synchronised"
    assert (second["included"], second["excluded"]) == (6, {"opted_out": 1})
    m = api.crm("GET", f"mailshots/{mailshot}/audience/people/{people[3]}")
    assert m["in_audience"] is True and m["sync_job_id"] == second["job_id"]


def test_the_listing_of_an_unknown_campaign_is_refused(client: TestClient, keys: Keys) -> None:
    r = client.get(
        f"{ESP}/integrated-campaigns/424242/suppressed",
        headers={"Authorization": f"Bearer {keys.esp_admin}"},
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "CAMPAIGN_NOT_FOUND"
