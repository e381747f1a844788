"""Campaign audiences over the ESP API: recipient chunks, snapshots and finalize."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

COLUMNS = ["seq", "person_id", "email", "first_name", "last_name", "organisation_id"]
CAMPAIGN = {
    "crm_mailshot_uid": "00000000-0000-4000-8000-000000000001",
    "name": "Autumn",
    "subject": "Hello",
    "from_name": "Acme",
    "from_address": "news@example.com",
    "text": "Hi",
}


def rows(first: int, count: int, domain: str = "example.com") -> list[list[Any]]:
    return [
        [i, 1000 + i, f"P{i}@{domain}", f"F{i}", f"L{i}", None] for i in range(first, first + count)
    ]


def start(esp: TestClient, mailshot: int, snapshot: int) -> None:
    resp = esp.put(f"integrated-campaigns/{mailshot}", json={**CAMPAIGN, "snapshot": snapshot})
    assert resp.status_code == 200, resp.text


def post(
    esp: TestClient,
    mailshot: int,
    snapshot: int,
    chunk: list[list[Any]],
    columns: list[str] = COLUMNS,
) -> Any:
    return esp.post(
        f"integrated-campaigns/{mailshot}/recipients",
        json={"snapshot": snapshot, "columns": columns, "rows": chunk},
    )


def audience(esp: TestClient, campaign_id: int) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = esp.get(f"campaigns/{campaign_id}/recipients", params=params).json()
        out.update({r["email"].lower(): r["crm_person_id"] for r in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def finalize(esp: TestClient, mailshot: int, snapshot: int, expected: int) -> Any:
    return esp.post(
        f"integrated-campaigns/{mailshot}/finalize",
        json={"snapshot": snapshot, "expected": expected},
    )


def test_the_same_chunk_twice_leaves_the_same_audience(esp: TestClient) -> None:
    start(esp, 1, 10)
    chunk = rows(0, 50)
    first = post(esp, 1, 10, chunk)
    assert first.status_code == 200, first.text
    assert first.json() == {"written": 50, "duplicates": 0}
    campaign_id = esp.get("integrated-campaigns/1").json()["id"]
    before = audience(esp, campaign_id)
    contacts_before = esp.get("contacts", params={"limit": 1000}).json()["items"]

    again = post(esp, 1, 10, chunk)
    assert again.json() == {"written": 50, "duplicates": 0}
    assert audience(esp, campaign_id) == before
    assert esp.get("contacts", params={"limit": 1000}).json()["items"] == contacts_before
    done = finalize(esp, 1, 10, 50)
    assert done.status_code == 200, done.text
    assert done.json()["audience_count"] == 50
    assert done.json()["status"] == "ready"


def test_a_newer_snapshot_replaces_the_audience_exactly(esp: TestClient) -> None:
    start(esp, 2, 1)
    post(esp, 2, 1, rows(0, 30))
    assert finalize(esp, 2, 1, 30).json()["audience_count"] == 30
    campaign_id = esp.get("integrated-campaigns/2").json()["id"]

    start(esp, 2, 2)
    assert esp.get("integrated-campaigns/2").json()["status"] == "receiving"
    post(esp, 2, 2, rows(20, 15))  # 20..34: ten shared with the old audience
    post(esp, 2, 2, rows(35, 5))
    done = finalize(esp, 2, 2, 20)
    assert done.status_code == 200, done.text
    assert done.json()["audience_count"] == 20
    got = audience(esp, campaign_id)
    assert set(got) == {f"p{i}@example.com" for i in range(20, 40)}
    campaign = esp.get("integrated-campaigns/2").json()
    assert campaign["finalised_snapshot"] == 2 and campaign["audience_count"] == 20
    # finalize is idempotent
    assert finalize(esp, 2, 2, 20).json()["audience_count"] == 20


def test_stale_snapshot_is_refused_for_chunks_and_finalize(esp: TestClient) -> None:
    start(esp, 3, 5)
    start(esp, 3, 6)
    resp = post(esp, 3, 5, rows(0, 3))
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "STALE_SNAPSHOT"
    assert finalize(esp, 3, 5, 0).json()["error"]["code"] == "STALE_SNAPSHOT"
    ahead = post(esp, 3, 7, rows(0, 3))
    assert ahead.status_code == 409
    assert ahead.json()["error"]["code"] == "SNAPSHOT_NOT_STARTED"
    assert post(esp, 99, 1, rows(0, 1)).json()["error"]["code"] == "CAMPAIGN_NOT_FOUND"


def test_finalize_refuses_a_count_mismatch_and_changes_nothing(esp: TestClient) -> None:
    start(esp, 4, 1)
    post(esp, 4, 1, rows(0, 10))
    resp = finalize(esp, 4, 1, 12)
    assert resp.status_code == 409
    err = resp.json()["error"]
    assert err["code"] == "AUDIENCE_COUNT_MISMATCH"
    assert "10" in err["message"] and "12" in err["message"]
    assert esp.get("integrated-campaigns/4").json()["status"] == "receiving"
    post(esp, 4, 1, rows(10, 2))
    assert finalize(esp, 4, 1, 12).status_code == 200


def test_duplicate_addresses_keep_the_first_and_are_counted(esp: TestClient) -> None:
    start(esp, 5, 1)
    chunk = [
        [0, 1, "ann@example.com", "Ann", "A", None],
        [1, 2, " ANN@example.com", "Annie", "B", None],
        [2, 3, "bob@example.com", "Bob", "C", None],
    ]
    assert post(esp, 5, 1, chunk).json() == {"written": 2, "duplicates": 1}
    later = [
        [3, 4, "Bob@Example.com", "Robert", "D", None],
        [4, 5, "cy@example.com", "Cy", "E", None],
    ]
    assert post(esp, 5, 1, later).json() == {"written": 1, "duplicates": 1}
    assert post(esp, 5, 1, later).json() == {"written": 1, "duplicates": 1}
    done = finalize(esp, 5, 1, 5).json()
    assert (done["audience_count"], done["duplicate_count"], done["received"]) == (3, 2, 5)
    campaign_id = done["id"]
    assert audience(esp, campaign_id) == {
        "ann@example.com": 1,
        "bob@example.com": 3,
        "cy@example.com": 5,
    }


def test_columns_by_name_in_any_order_and_contacts_updated(esp: TestClient) -> None:
    start(esp, 6, 1)
    cols = ["email", "last_name", "person_id", "first_name"]
    assert post(esp, 6, 1, [["dee@example.com", "Old", 9, "Dee"]], cols).is_success
    assert post(esp, 6, 1, [["dee@example.com", "New", 9, "Dee"]], cols).is_success
    contact = esp.get("contacts", params={"email": "DEE@example.com"}).json()["items"][0]
    assert (contact["first_name"], contact["last_name"], contact["crm_person_id"]) == (
        "Dee",
        "New",
        9,
    )
    missing = post(esp, 6, 1, [[9, "x"]], ["person_id", "first_name"])
    assert missing.status_code == 422
    assert missing.json()["error"]["code"] == "RECIPIENT_COLUMNS_MISSING"
    bad = post(esp, 6, 1, [[0, 1, "not-an-address", "", "", None]])
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "RECIPIENT_ROWS_INVALID"
    assert bad.json()["error"]["details"][0]["field"] == "rows.0.email"


def test_suppressed_recipients_are_counted_and_flagged(esp: TestClient) -> None:
    esp.post("suppressions", json={"email": "P1@example.com", "reason": "unsubscribed"})
    esp.post("bounces", json={"email": "p2@example.com", "kind": "soft"})  # not yet limited
    esp.post("suppressions", json={"email": "p3@example.com", "reason": "bounced"})
    esp.post("suppressions", json={"email": "elsewhere@example.com", "reason": "unsubscribed"})
    start(esp, 7, 1)
    post(esp, 7, 1, rows(0, 5))
    done = finalize(esp, 7, 1, 5).json()
    assert done["suppressed_count"] == 2
    page = esp.get(f"campaigns/{done['id']}/recipients").json()["items"]
    flagged = {r["email"].lower() for r in page if r["suppressed"]}
    assert flagged == {"p1@example.com", "p3@example.com"}


def test_recipients_paging_visits_every_row_once(esp: TestClient) -> None:
    start(esp, 8, 1)
    post(esp, 8, 1, rows(0, 23))
    campaign_id = esp.get("integrated-campaigns/8").json()["id"]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = esp.get(f"campaigns/{campaign_id}/recipients", params=params).json()
        seen += [r["contact_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 23 and seen == sorted(set(seen))


def test_the_organisation_is_stored_on_the_contact_and_unknown_columns_refused(
    esp: TestClient,
) -> None:
    start(esp, 8, 1)
    cols = [*COLUMNS, "organisation"]
    sent = post(esp, 8, 1, [[0, 41, "org@example.com", "Ada", "L", 3, "Analytical Engines"]], cols)
    assert sent.is_success, sent.text

    def contact() -> dict[str, Any]:
        found = esp.get("contacts", params={"email": "org@example.com"}).json()["items"]
        return dict(found[0])

    assert (contact()["organisation"], contact()["crm_organisation_id"]) == (
        "Analytical Engines",
        3,
    )
    # A chunk without the column (an older CRM) leaves the name as it is.
    assert post(esp, 8, 1, [[0, 41, "org@example.com", "Ada", "L", 3]]).is_success
    assert contact()["organisation"] == "Analytical Engines"
    # A person who left the organisation: the name is cleared.
    assert post(esp, 8, 1, [[0, 41, "org@example.com", "Ada", "L", None, None]], cols).is_success
    assert contact()["organisation"] == ""
    unknown = post(
        esp, 8, 1, [[0, 41, "org@example.com", "x"]], ["seq", "person_id", "email", "tier"]
    )
    assert unknown.status_code == 422
    body = unknown.json()["error"]
    assert body["code"] == "RECIPIENT_COLUMNS_UNKNOWN" and "'tier'" in body["message"]
