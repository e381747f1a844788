"""Mailing lists and marketing campaigns over the CRM API, with their members in bulk."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import AuditEntry


def _people(crm: TestClient, n: int) -> list[int]:
    return [
        crm.post("people", json={"first_name": f"P{i}", "email": f"p{i}@example.com"}).json()["id"]
        for i in range(n)
    ]


def _all(crm: TestClient, url: str, **params: object) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    while True:
        page = crm.get(url, params={"limit": 2, **params, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_list_crud_and_dynamic_needs_filter(crm: TestClient) -> None:
    made = crm.post("mailing-lists", json={"name": "Newsletter"})
    assert made.status_code == 201, made.text
    ml = made.json()
    assert ml["kind"] == "static"
    assert crm.patch(f"mailing-lists/{ml['id']}", json={"description": "d"}).json()["description"]
    assert crm.get("mailing-lists", params={"q": "news"}).json()["items"][0]["id"] == ml["id"]

    # A dynamic list needs its filter (tests/integration/test_audience_dynamic_lists.py).
    dynamic = crm.post("mailing-lists", json={"name": "D", "kind": "dynamic"})
    assert dynamic.status_code == 422
    assert dynamic.json()["error"]["details"][0]["field"] == "filter"
    assert dynamic.json()["error"]["fix"]
    resp = crm.patch(f"mailing-lists/{ml['id']}", json={"kind": "dynamic"})
    assert resp.json()["error"]["details"][0]["field"] == "filter"
    bad = crm.post("mailing-lists", json={"name": ""})
    assert bad.json()["error"]["details"][0]["rule"] == "string_too_short"

    assert crm.delete(f"mailing-lists/{ml['id']}").status_code == 204
    assert crm.get(f"mailing-lists/{ml['id']}").status_code == 404


def test_list_members_bulk_upsert_patch_delete(crm: TestClient, settings: Settings) -> None:
    ml = crm.post("mailing-lists", json={"name": "L"}).json()
    url = f"mailing-lists/{ml['id']}/members"
    ids = _people(crm, 5)

    first = crm.post(url, json={"person_ids": ids[:3] + ids[:1]})
    assert first.status_code == 200, first.text
    assert first.json() == {"written": 3, "changed": 3}
    again = crm.post(url, json={"person_ids": ids, "subscribed": True}).json()
    assert again == {"written": 5, "changed": 2}
    unsub = crm.post(url, json={"person_ids": ids[3:], "subscribed": False}).json()
    assert unsub == {"written": 2, "changed": 2}

    members = _all(crm, url)
    assert [m["person_id"] for m in members] == sorted(ids)
    assert [m["person_id"] for m in _all(crm, url, subscribed=False)] == ids[3:]

    patched = crm.patch(f"{url}/{ids[0]}", json={"subscribed": False})
    assert patched.json()["subscribed"] is False
    assert crm.delete(f"{url}/{ids[1]}").status_code == 204
    assert crm.patch(f"{url}/{ids[1]}", json={"subscribed": True}).status_code == 404
    assert len(_all(crm, url)) == 4

    with make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))() as s:
        unsubscribes = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "mailing_list.unsubscribe")
        ).all()
    audited = sorted(pid for e in unsubscribes for pid in (e.detail or {})["person_ids"])
    assert audited == sorted([*ids[3:], ids[0]])


def test_members_refuse_unknown_people_and_missing_list(crm: TestClient) -> None:
    ml = crm.post("mailing-lists", json={"name": "L"}).json()
    (pid,) = _people(crm, 1)
    resp = crm.post(f"mailing-lists/{ml['id']}/members", json={"person_ids": [pid, 9999]})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "UNKNOWN_PEOPLE"
    assert "9999" in resp.json()["error"]["message"]
    assert crm.get(f"mailing-lists/{ml['id']}/members").json()["items"] == []  # all or nothing
    assert crm.post("mailing-lists/999/members", json={"person_ids": [pid]}).status_code == 404
    empty = crm.post(f"mailing-lists/{ml['id']}/members", json={"person_ids": []})
    assert empty.json()["error"]["details"][0]["field"] == "person_ids"


def test_campaign_crud_and_validation(crm: TestClient) -> None:
    body = {
        "name": "Spring event",
        "category": "Event",
        "start_date": "2026-03-01",
        "end_date": "2026-03-31",
        "budget": "1500.50",
        "goals": "200 sign-ups",
        "member_statuses": ["Invited", "Registered", "Attended"],
    }
    made = crm.post("marketing-campaigns", json=body)
    assert made.status_code == 201, made.text
    camp = made.json()
    assert camp["status"] == "Planned"
    assert camp["budget"] == "1500.50"
    got = crm.get(f"marketing-campaigns/{camp['id']}").json()
    assert got["member_statuses"] == ["Invited", "Registered", "Attended"]

    resp = crm.patch(f"marketing-campaigns/{camp['id']}", json={"end_date": "2026-02-01"})
    detail = resp.json()["error"]["details"][0]
    assert (resp.status_code, detail["field"], detail["rule"]) == (422, "end_date", "date_order")
    dup = crm.post("marketing-campaigns", json={"name": "x", "member_statuses": ["A", "A"]})
    assert dup.json()["error"]["details"][0]["rule"] == "unique"
    neg = crm.post("marketing-campaigns", json={"name": "x", "budget": -1})
    assert neg.json()["error"]["details"][0]["field"] == "budget"

    assert crm.delete(f"marketing-campaigns/{camp['id']}").status_code == 204
    assert crm.get(f"marketing-campaigns/{camp['id']}").status_code == 404


def test_campaign_members_respect_statuses(crm: TestClient) -> None:
    camp = crm.post(
        "marketing-campaigns", json={"name": "C", "member_statuses": ["Invited", "Registered"]}
    ).json()
    url = f"marketing-campaigns/{camp['id']}/members"
    ids = _people(crm, 3)
    assert crm.post(url, json={"person_ids": ids, "status": "Invited"}).json()["written"] == 3
    wrong = crm.post(url, json={"person_ids": ids, "status": "Lost"})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["details"][0]["rule"] == "member_status"

    assert crm.patch(f"{url}/{ids[0]}", json={"status": "Registered"}).json()["status"] == (
        "Registered"
    )
    assert crm.patch(f"{url}/{ids[1]}", json={"status": "Nope"}).status_code == 422
    assert [m["person_id"] for m in _all(crm, url, status="Invited")] == ids[1:]

    in_use = crm.patch(f"marketing-campaigns/{camp['id']}", json={"member_statuses": ["Invited"]})
    assert in_use.status_code == 409
    assert in_use.json()["error"]["code"] == "CAMPAIGN_STATUSES_IN_USE"
    assert crm.delete(f"{url}/{ids[0]}").status_code == 204
    assert crm.delete(f"{url}/{ids[0]}").status_code == 404
    ok = crm.patch(f"marketing-campaigns/{camp['id']}", json={"member_statuses": ["Invited"]})
    assert ok.status_code == 200

    free = crm.post("marketing-campaigns", json={"name": "Any status"}).json()
    resp = crm.post(
        f"marketing-campaigns/{free['id']}/members", json={"person_ids": ids, "status": "Whatever"}
    )
    assert resp.json() == {"written": 3, "changed": 3}
