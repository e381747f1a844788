"""The bridge's relay of suppressed people (``bridge/suppressed.py``): every page the ESP
lists reaches the CRM as one call on the finalize unit, in order, with the lease token."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.suppressed import relay_suppressed
from mailshot.contracts.units import UnitPublic

UNIT = UnitPublic(
    unit_id=5,
    job_id=12,
    mailshot_id=3,
    kind="finalize",
    chunk_no=None,
    first_seq=None,
    last_seq=None,
    lease_token="tok",
    lease_expires_at=datetime(2026, 1, 1, tzinfo=UTC),
    lease_seconds=30.0,
    attempt=1,
    takeover=False,
    esp_campaign_id="1",
    recipients_total=10,
    chunks_total=1,
)


def test_pages_are_relayed_until_the_listing_ends() -> None:
    listed = [(101, "unsubscribed"), (102, "bounced"), (107, "bounced")]
    esp_calls: list[dict[str, Any]] = []
    crm_calls: list[tuple[str, Any]] = []

    def esp(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/integrated-campaigns/3/suppressed"
        params = dict(request.url.params)
        esp_calls.append(params)
        start = int(params.get("cursor", 0))
        size = int(params["limit"])
        page = listed[start : start + size]
        more = start + size < len(listed)
        return httpx.Response(
            200,
            json={
                "items": [
                    {"crm_person_id": p, "email": f"{p}@example.com", "reason": r} for p, r in page
                ],
                "next_cursor": str(start + size) if more else None,
                "limit": size,
                "snapshot": 12,
            },
        )

    def crm(request: httpx.Request) -> httpx.Response:
        crm_calls.append((request.url.path, orjson.loads(request.content)))
        return httpx.Response(200, json={"unit_id": 5, "job_id": 12, "people": 2})

    esp_client = EspClient(httpx.Client(transport=httpx.MockTransport(esp), base_url="http://e"))
    crm_client = CrmClient(httpx.Client(transport=httpx.MockTransport(crm), base_url="http://c"))
    checks: list[int] = []
    n = relay_suppressed(crm_client, esp_client, UNIT, lambda: checks.append(1), page_size=2)

    assert n == 3
    assert [c.get("snapshot") for c in esp_calls] == ["12", "12"]
    assert [path for path, _ in crm_calls] == ["/api/v1/sync/units/5/suppressed"] * 2
    assert [body["people"] for _, body in crm_calls] == [
        [[101, "unsubscribed"], [102, "bounced"]],
        [[107, "bounced"]],
    ]
    assert all(body["lease_token"] == "tok" for _, body in crm_calls)
    assert len(checks) == 4
