"""The bridge's relay of the ESP's sends: the cursor is the CRM's (read at start and again
after a failure, so nothing between is skipped), a page goes to the CRM with the cursor
after it, and the cursor order is the feed's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import orjson

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.errors import TransientError
from mailshot.bridge.sends import SendRelay
from mailshot.contracts.sends import SendCounts, SendSummary, feed_cursor, parse_feed_cursor

AT = datetime(2026, 3, 1, 9, 30, 0, 120000, tzinfo=UTC)


def _summary(send_id: int) -> SendSummary:
    return SendSummary(
        send_id=send_id,
        version=4,
        changed_at=AT,
        crm_mailshot_id=7,
        esp_campaign_id=3,
        state="sent",
        total=2,
        counts=SendCounts(sent=2),
    )


class Sides:
    """A CRM and an ESP as MockTransports: what each was asked, and a CRM that fails the
    first PUT."""

    def __init__(self) -> None:
        self.stored: str | None = "C0"
        self.asked_after: list[str | None] = []
        self.puts: list[dict[str, object]] = []
        self.cursor_reads = 0
        self.fail_next_put = True

    def crm(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.cursor_reads += 1
            return httpx.Response(200, json={"cursor": self.stored})
        if self.fail_next_put:
            self.fail_next_put = False
            return httpx.Response(503, json={"error": {"code": "DOWN", "message": "down"}})
        body = orjson.loads(request.content)
        self.puts.append(body)
        self.stored = body["cursor"]
        return httpx.Response(200, json={"applied": len(body["items"]), "cursor": self.stored})

    def esp(self, request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("changed_after")
        self.asked_after.append(after)
        items = [_summary(1).model_dump(mode="json")] if after == "C0" else []
        return httpx.Response(200, json={"items": items, "next_cursor": "C1", "more": False})


def test_a_failed_put_reads_the_cursor_back_and_relays_the_page_again() -> None:
    sides = Sides()
    relay = SendRelay(
        CrmClient(httpx.Client(transport=httpx.MockTransport(sides.crm), base_url="http://c")),
        EspClient(httpx.Client(transport=httpx.MockTransport(sides.esp), base_url="http://e")),
        every=1.0,
    )
    assert relay._step() == 1.0  # the CRM refused: wait, and read its cursor next time
    assert relay.once() == (1, False)
    assert relay.once() == (0, False)
    assert sides.cursor_reads == 2
    assert sides.asked_after == ["C0", "C0", "C1"]
    assert [p["cursor"] for p in sides.puts] == ["C1"]
    assert relay.cursor == "C1"


def test_a_failure_to_reach_a_side_is_a_bridge_error_not_a_crash() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    crm = CrmClient(httpx.Client(transport=httpx.MockTransport(down), base_url="http://c"))
    try:
        crm.send_feed_cursor()
    except TransientError as exc:
        assert exc.code == "BRIDGE_UNREACHABLE"
    else:
        raise AssertionError("no error")


def test_cursors_order_as_strings_as_the_feed_orders_changes() -> None:
    changes = [
        (AT, 2),
        (AT, 10),
        (AT + timedelta(microseconds=1), 1),
        (AT + timedelta(days=400), 1),
    ]
    cursors = [feed_cursor(at, send_id) for at, send_id in changes]
    assert sorted(cursors) == cursors
    assert [parse_feed_cursor(c) for c in cursors] == changes
