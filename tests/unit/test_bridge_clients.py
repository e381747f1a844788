"""The bridge's HTTP clients map every outcome of a call to what the worker must do."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import httpx
import orjson
import pytest

from mailshot.bridge.clients import CrmClient, EspClient, parse_retry_after
from mailshot.bridge.errors import LeaseLostError, PermanentError, TransientError
from mailshot.contracts.campaign import IntegratedCampaignPut
from mailshot.contracts.units import UnitPublic

UNIT = UnitPublic(
    unit_id=5,
    job_id=2,
    mailshot_id=7,
    kind="chunk",
    chunk_no=0,
    first_seq=0,
    last_seq=9,
    lease_token="t" * 32,
    lease_expires_at=datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC),
    lease_seconds=30,
    attempt=1,
    takeover=False,
    esp_campaign_id="3",
    recipients_total=10,
    chunks_total=1,
)


CHUNK = b'{"columns":["seq","person_id","email"],"rows":[[0,501,"a@example.com"]]}'


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "fix": "do this"}}
    return httpx.Response(status, content=orjson.dumps(body), headers=headers)


def _http(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler), base_url="http://x/esp")


def test_a_long_name_refusal_is_permanent_and_keeps_the_esps_words() -> None:
    esp = EspClient(_http(lambda r: _error(422, "CAMPAIGN_NAME_TOO_LONG")))
    with pytest.raises(PermanentError) as info:
        esp.put_campaign(
            7, IntegratedCampaignPut(snapshot=2, crm_mailshot_uid=UUID(int=1), name="x" * 101)
        )
    assert info.value.code == "CAMPAIGN_NAME_TOO_LONG"
    assert info.value.message == "CAMPAIGN_NAME_TOO_LONG happened"
    assert info.value.fix == "do this"


@pytest.mark.parametrize(
    ("response", "retry_after", "paused"),
    [
        (_error(500, "INTERNAL_ERROR"), None, False),
        (_error(429, "RATE_LIMITED", {"Retry-After": "3"}), 3.0, False),
        (_error(503, "INTEGRATION_PAUSED", {"Retry-After": "30"}), 30.0, True),
        (httpx.Response(502, content=b"<html>bad gateway</html>"), None, False),
    ],
)
def test_server_trouble_is_transient(
    response: httpx.Response, retry_after: float | None, paused: bool
) -> None:
    esp = EspClient(_http(lambda r: response))
    with pytest.raises(TransientError) as info:
        esp.finalize(7, 2, 10)
    assert info.value.retry_after == retry_after
    assert info.value.paused is paused


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "AUTH_KEY_DISABLED"),
        (401, "AUTH_KEY_EXPIRED"),
        (401, "AUTH_USER_DISABLED"),
        (403, "AUTH_SCOPE_MISSING"),
    ],
)
def test_a_refused_bridge_key_waits_uncounted_instead_of_failing_the_mailshot(
    status: int, code: str
) -> None:
    esp = EspClient(_http(lambda r: _error(status, code)))
    with pytest.raises(TransientError) as info:
        esp.post_recipients_raw(7, 2, CHUNK)
    assert info.value.code == code
    assert info.value.key_refused
    assert not info.value.counts_as_attempt
    assert info.value.retry_after is not None and info.value.retry_after > 0


def test_network_faults_are_transient() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TransientError, match="could not be reached"):
        EspClient(_http(refuse)).finalize(7, 2, 10)
    with pytest.raises(TransientError) as info:
        EspClient(_http(slow)).finalize(7, 2, 10)
    assert info.value.code == "BRIDGE_TIMEOUT"


@pytest.mark.parametrize("code", ["SYNC_LEASE_LOST", "SYNC_JOB_ENDED"])
def test_a_lost_lease_is_its_own_signal(code: str) -> None:
    crm = CrmClient(_http(lambda r: _error(409, code)))
    with pytest.raises(LeaseLostError):
        crm.complete(UNIT, recipients_written=10)
    with pytest.raises(LeaseLostError):
        crm.heartbeat(UNIT)


def test_a_conflict_outside_the_lease_is_permanent() -> None:
    esp = EspClient(_http(lambda r: _error(409, "STALE_SNAPSHOT")))
    with pytest.raises(PermanentError):
        esp.post_recipients_raw(7, 2, CHUNK)


def test_a_chunk_goes_from_the_crm_to_the_esp_as_its_bytes_with_the_snapshot() -> None:
    seen: list[bytes] = []

    def crm(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/esp/api/v1/sync/jobs/2/recipients"
        assert dict(request.url.params) == {"first_seq": "0", "last_seq": "9"}
        return httpx.Response(200, content=CHUNK + b"\n")

    def esp(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        assert request.url.path == "/esp/api/v1/integrated-campaigns/7/recipients"
        assert request.headers["content-type"] == "application/json"
        return httpx.Response(200, json={"written": 1, "duplicates": 0})

    chunk = CrmClient(_http(crm)).recipients_raw(2, 0, 9)
    out = EspClient(_http(esp)).post_recipients_raw(7, 2, chunk)
    assert (out.written, out.duplicates) == (1, 0)
    [body] = seen
    assert body.startswith(b'{"snapshot":2,"columns":')
    assert orjson.loads(body) == {"snapshot": 2, **orjson.loads(CHUNK)}


def test_a_chunk_that_is_not_json_is_a_transient_fault() -> None:
    crm = CrmClient(_http(lambda r: httpx.Response(200, content=b"<html>proxy</html>")))
    with pytest.raises(TransientError) as info:
        crm.recipients_raw(2, 0, 9)
    assert info.value.code == "BRIDGE_BAD_CHUNK"


def test_an_answer_that_is_not_the_contracts_is_a_transient_fault() -> None:
    esp = EspClient(_http(lambda r: httpx.Response(200, json={"writen": 1})))
    with pytest.raises(TransientError) as info:
        esp.post_recipients_raw(7, 2, CHUNK)
    assert info.value.code == "BRIDGE_BAD_ANSWER"
    assert "RecipientsWritten" in info.value.message


def test_lease_answers_a_unit_or_nothing() -> None:
    seen: list[object] = []

    def crm(request: httpx.Request) -> httpx.Response:
        seen.append(orjson.loads(request.content))
        if len(seen) == 1:
            return httpx.Response(204)
        return httpx.Response(200, content=b'{"unit":' + UNIT.model_dump_json().encode() + b"}")

    client = CrmClient(_http(crm))
    assert client.lease("w") is None
    assert client.lease("w", small_only=True, wait_seconds=1) == UNIT
    assert seen == [{"worker_id": "w"}, {"worker_id": "w", "small_only": True, "wait_seconds": 1}]


def test_retry_after_accepts_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:05 GMT", now) == 5
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None) is None


def test_a_response_and_its_bodies_are_freed_when_the_call_is_done() -> None:
    """httpx ties a response and its stream in a reference cycle, which only the cyclic
    garbage collector frees (the server runs it rarely); the client lets the stream go, so a
    chunk's request and response bodies are freed as soon as the caller drops them."""
    from mailshot.bridge.clients import call

    http = _http(lambda _request: httpx.Response(200, content=b'{"written": 1}'))
    gc.disable()
    try:
        response = call(http, "ESP", "POST", "/recipients", content=b'{"rows": []}')
        assert response.json() == {"written": 1}
        request = weakref.ref(response.request)
        gone = weakref.ref(response)
        del response
        assert gone() is None and request() is None
    finally:
        gc.enable()


def test_a_failure_report_is_cut_to_what_the_crm_takes() -> None:
    seen: list[dict[str, object]] = []

    def crm(request: httpx.Request) -> httpx.Response:
        seen.append(orjson.loads(request.content))
        outcome = {"unit_id": 5, "job_id": 2, "kind": "chunk", "job_state": "running"}
        return httpx.Response(200, json={**outcome, "repeated": False})

    out = CrmClient(_http(crm)).fail(
        UNIT, permanent=False, code="C" * 70, message="m" * 5000, retry_after_seconds=1e7
    )
    assert (out.job_state, out.repeated) == ("running", False)
    [body] = seen
    assert body == {
        "lease_token": UNIT.lease_token,
        "permanent": False,
        "code": "C" * 64,
        "message": "m" * 4000,
        "retry_after_seconds": 86_400,
    }
