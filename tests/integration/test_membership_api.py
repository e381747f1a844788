"""Dynamic lists and "is this person in this mailshot, and why?" over the CRM's API."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def _post(crm: TestClient, path: str, body: dict[str, Any]) -> Any:
    r = crm.post(path, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_dynamic_list_members_are_computed_and_not_edited(crm: TestClient) -> None:
    gb = _post(crm, "people", {"email": "gb@acme.com", "country": "GB"})
    _post(crm, "people", {"email": "fr@acme.com", "country": "FR"})
    ml = _post(
        crm,
        "mailing-lists",
        {"name": "UK", "kind": "dynamic", "filter": {"country": "gb", "email_domain": "ACME.com"}},
    )
    assert ml["filter"] == {"country": ["gb"], "email_domain": ["acme.com"]}
    members = crm.get(f"mailing-lists/{ml['id']}/members").json()["items"]
    assert [m["person_id"] for m in members] == [gb["id"]]
    refused = crm.post(f"mailing-lists/{ml['id']}/members", json={"person_ids": [gb["id"]]})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "MAILING_LIST_DYNAMIC_MEMBERS"
    assert crm.delete(f"mailing-lists/{ml['id']}/members/{gb['id']}").status_code == 409

    empty = crm.post("mailing-lists", json={"name": "X", "kind": "dynamic", "filter": {}})
    assert empty.json()["error"]["details"][0]["rule"] == "filter_empty"
    dates = {"created_after": "2026-02-01T00:00:00Z", "created_before": "2026-01-01T00:00:00Z"}
    backwards = crm.post("mailing-lists", json={"name": "X", "kind": "dynamic", "filter": dates})
    assert backwards.json()["error"]["details"][0]["rule"] == "date_range"
    static = _post(crm, "mailing-lists", {"name": "S"})
    _post(crm, f"mailing-lists/{static['id']}/members", {"person_ids": [gb["id"]]})
    became = crm.patch(
        f"mailing-lists/{static['id']}", json={"kind": "dynamic", "filter": {"country": "GB"}}
    )
    assert became.json()["error"]["code"] == "MAILING_LIST_HAS_MEMBERS"


def test_why_a_person_is_in_or_out(crm: TestClient) -> None:
    ok = _post(crm, "people", {"first_name": "Ann", "email": "ann@acme.com", "country": "GB"})
    out = _post(crm, "people", {"email": "bob@acme.com", "country": "GB", "no_email": True})
    other = _post(crm, "people", {"email": "cy@acme.com", "country": "FR"})
    ml = _post(crm, "mailing-lists", {"name": "UK", "kind": "dynamic", "filter": {"country": "GB"}})
    ms = _post(crm, "mailshots", {"name": "M", "mailing_list_id": ml["id"]})
    recount = crm.post(f"mailshots/{ms['id']}/recount").json()
    assert recount["included"] == 1 and recount["excluded"]["opted_out"] == 1

    def ask(pid: int) -> Any:
        r = crm.get(f"mailshots/{ms['id']}/audience/people/{pid}")
        assert r.status_code == 200, r.text
        return r.json()

    assert ask(ok["id"]) | {"explanation": ""} == {
        "person_id": ok["id"],
        "mailshot_id": ms["id"],
        "in_audience": True,
        "reason": None,
        "explanation": "",
        "sync_job_id": None,
        "evaluated": "live",
    }
    assert ask(out["id"])["reason"] == "opted_out"
    assert "No Email" in ask(out["id"])["explanation"]
    assert ask(other["id"])["reason"] == "not_in_source"
    assert "dynamic list 'UK'" in ask(other["id"])["explanation"]
    assert crm.get(f"mailshots/{ms['id']}/audience/people/999999").status_code == 404
