"""The bridge relays the ESP's limits to the CRM, and keeps trying while either is down."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from mailshot.bridge import limits
from mailshot.bridge.errors import TransientError

LIMITS = {"campaign": {"name_max_length": 100, "required": ["name"]}, "recipients": {}}


def _client(handler: Any, base: str) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler), base_url=base)


def test_limits_are_read_from_the_esp_and_put_to_the_crm() -> None:
    seen: list[httpx.Request] = []

    def esp(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/esp/api/v1/limits"
        return httpx.Response(200, json=LIMITS)

    def crm(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"known": True})

    out = limits.relay(_client(esp, "http://x/esp"), _client(crm, "http://x/crm"))
    assert out == LIMITS
    [put] = seen
    assert put.method == "PUT" and put.url.path == "/crm/api/v1/integration/esp-limits"
    body = orjson.loads(put.content)
    assert body["limits"] == LIMITS
    assert datetime.fromisoformat(body["read_at"]).utcoffset() == timedelta(0)


def test_a_side_down_is_retried_until_it_works() -> None:
    calls = {"esp": 0, "crm": 0}
    stop = threading.Event()

    def esp(request: httpx.Request) -> httpx.Response:
        calls["esp"] += 1
        if calls["esp"] == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json=LIMITS)

    def crm(request: httpx.Request) -> httpx.Response:
        calls["crm"] += 1
        if calls["crm"] == 1:
            return httpx.Response(503, json={"error": {"code": "DOWN", "message": "down"}})
        stop.set()  # relayed: end the loop
        return httpx.Response(200, json={})

    limits.relay_forever(
        _client(esp, "http://x/esp"), _client(crm, "http://x/crm"), stop, retry_seconds=0.01
    )
    assert calls == {"esp": 3, "crm": 2}


def test_a_crm_that_is_down_is_a_transient_error() -> None:
    def esp(_: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=LIMITS)

    def crm(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientError):
        limits.relay(_client(esp, "http://x/esp"), _client(crm, "http://x/crm"))
