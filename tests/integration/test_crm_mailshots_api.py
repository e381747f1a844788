"""Templates and mailshots over the CRM API: every field, cross-field rules, filters, delete."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import SyncJob


def test_template_crud(crm: TestClient) -> None:
    made = crm.post("templates", json={"name": "Plain", "subject": "Hi", "html": "<p>Hi</p>"})
    assert made.status_code == 201, made.text
    t = made.json()
    assert crm.patch(f"templates/{t['id']}", json={"text": "Hi"}).json()["text"] == "Hi"
    assert crm.get("templates", params={"q": "pla"}).json()["items"][0]["id"] == t["id"]
    assert crm.patch(f"templates/{t['id']}", json={"name": None}).status_code == 422
    assert crm.delete(f"templates/{t['id']}").status_code == 204
    assert crm.get(f"templates/{t['id']}").status_code == 404


def test_mailshot_every_field_and_template_copy(crm: TestClient) -> None:
    tpl = crm.post(
        "templates", json={"name": "T", "subject": "From template", "html": "<b>x</b>", "text": "x"}
    ).json()
    ml = crm.post("mailing-lists", json={"name": "L"}).json()
    body = {
        "name": "N" * 255,
        "description": "Spring newsletter",
        "from_name": "Marketing",
        "from_address": "news@example.com",
        "reply_to": "reply@example.com",
        "template_id": tpl["id"],
        "text": "own text",
        "audience_source": "mailing_list",
        "mailing_list_id": ml["id"],
        "mailshot_type": "refresh_recurring",
        "refresh_period_hours": 24,
        "status": "ready",
    }
    made = crm.post("mailshots", json=body)
    assert made.status_code == 201, made.text
    ms = made.json()
    for key, value in body.items():
        if key != "text":
            assert ms[key] == value, key
    assert (ms["html"], ms["text"], ms["subject"]) == ("<b>x</b>", "own text", "From template")
    assert ms["sync_with"] == "esp"
    assert ms["sync_state"] == "not_synchronised"
    assert ms["esp_campaign_id"] is None
    assert crm.get(f"mailshots/{ms['id']}").json() == ms


def test_mailshot_validation(crm: TestClient) -> None:
    too_long = crm.post("mailshots", json={"name": "N" * 256})
    assert too_long.json()["error"]["details"][0]["rule"] == "string_too_long"
    sender = crm.post("mailshots", json={"name": "M", "from_address": "not-an-address"})
    assert sender.status_code == 422
    detail = sender.json()["error"]["details"][0]
    assert (detail["field"], detail["rule"]) == ("from_address", "email")
    recurring = crm.post("mailshots", json={"name": "M", "mailshot_type": "refresh_recurring"})
    detail = recurring.json()["error"]["details"][0]
    assert (detail["field"], detail["rule"]) == ("refresh_period_hours", "required_for_type")
    kind = crm.post("mailshots", json={"name": "M", "mailshot_type": "weekly"})
    assert kind.json()["error"]["details"][0]["field"] == "mailshot_type"
    missing = crm.post("mailshots", json={"name": "M", "mailing_list_id": 404})
    detail = missing.json()["error"]["details"][0]
    assert (detail["field"], detail["rule"]) == ("mailing_list_id", "exists")
    mismatch = crm.post("mailshots", json={"name": "M", "marketing_campaign_id": 1})
    detail = mismatch.json()["error"]["details"][0]
    assert (detail["field"], detail["rule"]) == ("marketing_campaign_id", "audience_source")
    sync = crm.post("mailshots", json={"name": "M", "sync_state": "synchronised"})
    assert sync.json()["error"]["details"][0]["rule"] == "extra_forbidden"


def test_mailshot_switching_audience_source(crm: TestClient) -> None:
    ml = crm.post("mailing-lists", json={"name": "L"}).json()
    camp = crm.post(
        "marketing-campaigns", json={"name": "C", "member_statuses": ["Invited", "Attended"]}
    ).json()
    ms = crm.post("mailshots", json={"name": "M", "mailing_list_id": ml["id"]}).json()

    switched = crm.patch(
        f"mailshots/{ms['id']}",
        json={
            "audience_source": "marketing_campaign",
            "marketing_campaign_id": camp["id"],
            "campaign_member_statuses": ["Attended"],
        },
    ).json()
    assert switched["mailing_list_id"] is None
    assert switched["campaign_member_statuses"] == ["Attended"]
    bad = crm.patch(f"mailshots/{ms['id']}", json={"campaign_member_statuses": ["Lost"]})
    detail = bad.json()["error"]["details"][0]
    assert (detail["field"], detail["rule"]) == ("campaign_member_statuses", "member_status")

    back = crm.patch(
        f"mailshots/{ms['id']}",
        json={"audience_source": "mailing_list", "mailing_list_id": ml["id"]},
    ).json()
    assert (back["marketing_campaign_id"], back["campaign_member_statuses"]) == (None, [])
    static = crm.patch(f"mailshots/{ms['id']}", json={"mailshot_type": "static"}).json()
    assert static["refresh_period_hours"] is None


def test_mailshot_filters_paging_and_delete_cascades(crm: TestClient, settings: Settings) -> None:
    ids = [
        crm.post("mailshots", json={"name": n}).json()["id"] for n in ("Alpha", "Beta", "Alphabet")
    ]
    names = crm.get("mailshots", params={"name": "Alpha"}).json()["items"]
    assert [m["id"] for m in names] == [ids[0]]
    contains = crm.get("mailshots", params={"q": "alpha"}).json()["items"]
    assert [m["id"] for m in contains] == [ids[0], ids[2]]
    page = crm.get("mailshots", params={"limit": 2}).json()
    rest = crm.get("mailshots", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [m["id"] for m in page["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None

    sessions = make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))
    with sessions() as s:
        s.execute(
            insert(SyncJob).values(
                mailshot_id=ids[0], state="completed", chunk_size=10, requested_at=datetime.now(UTC)
            )
        )
        s.commit()
    assert crm.delete(f"mailshots/{ids[0]}").status_code == 204
    assert crm.get(f"mailshots/{ids[0]}").status_code == 404
    assert crm.delete(f"mailshots/{ids[0]}").status_code == 404
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(SyncJob)) == 0
