"""People over the CRM API: addresses stored as given and classified, filters, opt-out audit,
validation, paging, references; and compliance records."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import AuditEntry


def _audit(settings: Settings, action: str) -> list[AuditEntry]:
    with make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_person_crud_and_email_classification(crm: TestClient) -> None:
    made = crm.post(
        "people", json={"first_name": "Ada", "last_name": "Lovelace", "email": " Ada@Example.com "}
    )
    assert made.status_code == 201, made.text
    ada = made.json()
    assert ada["email"] == "Ada@Example.com"
    assert ada["email_normalised"] == "ada@example.com"
    assert ada["email_status"] == "ok"

    bad = crm.post("people", json={"first_name": "Bad", "email": "bad@@nowhere"}).json()
    assert bad["email"] == "bad@@nowhere"
    assert bad["email_status"] == "invalid"
    none = crm.post("people", json={"first_name": "None"}).json()
    assert none["email_status"] == "missing"

    patched = crm.patch(f"people/{bad['id']}", json={"email": "fixed@example.org"}).json()
    assert (patched["email_status"], patched["email_normalised"]) == ("ok", "fixed@example.org")
    cleared = crm.patch(f"people/{bad['id']}", json={"email": None}).json()
    assert (cleared["email_status"], cleared["email"]) == ("missing", None)
    assert cleared["first_name"] == "Bad"

    assert crm.delete(f"people/{ada['id']}").status_code == 204
    gone = crm.get(f"people/{ada['id']}")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "NOT_FOUND"


def test_filters(crm: TestClient) -> None:
    org = crm.post("organisations", json={"name": "Acme"}).json()
    a = crm.post(
        "people",
        json={"first_name": "Grace", "last_name": "Hopper", "email": "grace@navy.example.com"},
    ).json()
    b = crm.post(
        "people",
        json={"first_name": "Alan", "last_name": "Turing", "organisation_id": org["id"]},
    ).json()
    crm.post("people", json={"first_name": "100%", "last_name": "Sure"})

    def ids(**params: object) -> list[int]:
        return [p["id"] for p in crm.get("people", params=params).json()["items"]]

    assert ids(email="GRACE@navy.example.com") == [a["id"]]
    assert ids(q="hopp") == [a["id"]]
    assert ids(q="grace hopper") == [a["id"]]
    assert ids(q="navy") == [a["id"]]
    assert ids(organisation_id=org["id"]) == [b["id"]]
    assert len(ids(q="%")) == 1  # a literal percent sign, not a wildcard


def test_opt_out_changes_are_audited(crm: TestClient, settings: Settings) -> None:
    p = crm.post("people", json={"first_name": "Opt", "email": "opt@example.com"}).json()
    assert crm.patch(f"people/{p['id']}", json={"no_email": True}).json()["no_email"] is True
    crm.patch(f"people/{p['id']}", json={"first_name": "Still opted out"})
    crm.patch(f"people/{p['id']}", json={"no_email": False})
    outs = _audit(settings, "person.opt_out")
    ins = _audit(settings, "person.opt_in")
    assert [e.entity_id for e in outs] == [str(p["id"])]
    assert len(ins) == 1
    assert "admin@example.com" in outs[0].actor


def test_validation_and_references(crm: TestClient) -> None:
    resp = crm.post("people", json={"first_name": "x" * 256})
    assert resp.status_code == 422
    detail = resp.json()["error"]["details"][0]
    assert (detail["field"], detail["rule"]) == ("first_name", "string_too_long")

    resp = crm.post("people", json={"first_name": "A", "organisation_id": 999})
    detail = resp.json()["error"]["details"][0]
    assert resp.status_code == 422
    assert (detail["field"], detail["rule"]) == ("organisation_id", "exists")

    p = crm.post("people", json={"first_name": "A"}).json()
    resp = crm.patch(f"people/{p['id']}", json={"no_email": None})
    assert resp.json()["error"]["details"][0]["rule"] == "not_null"
    resp = crm.post("people", json={"first_name": "A", "nickname": "a"})
    assert resp.json()["error"]["details"][0]["rule"] == "extra_forbidden"


def test_paging(crm: TestClient) -> None:
    made = {crm.post("people", json={"first_name": f"P{i}"}).json()["id"] for i in range(5)}
    seen: list[int] = []
    cursor = None
    while True:
        page = crm.get("people", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [p["id"] for p in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made)


def test_compliance_records(crm: TestClient, settings: Settings) -> None:
    p = crm.post("people", json={"first_name": "C", "email": "c@example.com"}).json()
    url = f"people/{p['id']}/compliance-records"
    made = crm.post(url, json={"given_at": "2025-01-01T00:00:00Z", "source": "web form"})
    assert made.status_code == 201, made.text
    rec = made.json()
    assert rec["in_force"] is True
    expired = crm.post(url, json={"expires_at": "2020-01-01T00:00:00Z"}).json()
    assert expired["in_force"] is False
    assert [r["id"] for r in crm.get(url).json()["items"]] == [rec["id"], expired["id"]]

    revoked = crm.patch(
        f"compliance-records/{rec['id']}", json={"revoked_at": "2025-06-01T00:00:00+02:00"}
    ).json()
    assert revoked["in_force"] is False
    assert revoked["revoked_at"].startswith("2025-05-31T22:00:00")

    naive = crm.post(url, json={"given_at": "2025-01-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.json()["error"]["details"][0]["field"] == "given_at"

    assert crm.delete(f"compliance-records/{expired['id']}").status_code == 204
    assert crm.get(f"compliance-records/{expired['id']}").status_code == 404
    assert crm.get("people/999/compliance-records").status_code == 404
    actions = [
        a
        for a in ("compliance.create", "compliance.update", "compliance.delete")
        if _audit(settings, a)
    ]
    assert actions == ["compliance.create", "compliance.update", "compliance.delete"]
