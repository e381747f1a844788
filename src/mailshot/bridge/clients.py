"""Thin typed clients of the CRM's sync API and the ESP's integrated-campaign API.

Each takes an ``httpx.Client`` already pointed at the part's base URL with the bridge's key
(:func:`make_http`), so a test can hand it the real app in-process, or a misbehaving
server. Every HTTP outcome is mapped to the bridge's error tree
(:mod:`mailshot.bridge.errors`) in one place, :func:`_call`.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from mailshot.bridge.errors import LeaseLostError, PermanentError, TransientError

_LEASE_CODES = frozenset({"SYNC_LEASE_LOST", "SYNC_JOB_ENDED"})


#: How long a unit waits before it is tried again after a side refused the bridge's key
#: (at most: the CRM makes it due once a heartbeat says the key is accepted again).
KEY_REFUSED_RETRY_SECONDS = 15.0


def make_http(base_url: str, key: str, timeout: float) -> httpx.Client:
    """An HTTP client for one part: base URL, bearer key, timeouts, a small pool."""
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _error_of(response: httpx.Response) -> tuple[str, str, str | None]:
    try:
        body = orjson.loads(response.content)
        err = body.get("error", body) if isinstance(body, dict) else {}
    except orjson.JSONDecodeError:
        err = {}
    code = str(err.get("code") or f"HTTP_{response.status_code}")
    message = str(err.get("message") or response.reason_phrase or "no message")
    fix = err.get("fix")
    return code, message, str(fix) if fix else None


def _call(
    http: httpx.Client,
    side: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    content: bytes | None = None,
    params: dict[str, Any] | None = None,
    lease_call: bool = False,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"} if content is not None else None
    try:
        response = http.request(
            method, path, json=json, content=content, params=params, headers=headers
        )
    except httpx.TimeoutException as exc:
        raise TransientError(
            "BRIDGE_TIMEOUT", f"The {side} did not answer {method} {path} in time ({exc!r})."
        ) from exc
    except httpx.TransportError as exc:
        raise TransientError(
            "BRIDGE_UNREACHABLE", f"The {side} could not be reached for {method} {path} ({exc!r})."
        ) from exc
    # httpx binds a response and its stream to each other (``BoundSyncStream``), a cycle
    # only the cyclic garbage collector frees; until it runs, the request's and the
    # response's bodies (about 1.3 MB each for a chunk of 20,000) stay in memory. The body
    # is read and the stream closed by now, so the stream is let go.
    response.stream = httpx.ByteStream(b"")
    status = response.status_code
    if status < 400:
        return response
    code, message, fix = _error_of(response)
    if lease_call and (status == 404 or (status == 409 and code in _LEASE_CODES)):
        raise LeaseLostError(code, message)
    if status in (401, 403) and code.startswith("AUTH_"):
        raise TransientError(
            code, message, fix, status, retry_after=KEY_REFUSED_RETRY_SECONDS, key_refused=True
        )
    if status in (408, 429) or status >= 500:
        raise TransientError(
            code,
            message,
            fix,
            status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            paused=code == "INTEGRATION_PAUSED",
        )
    raise PermanentError(code, f"{message}", fix, status)


def _json(response: httpx.Response) -> Any:
    return orjson.loads(response.content) if response.content else None


@dataclass(frozen=True)
class Unit:
    """A leased unit of sync work, as the CRM handed it out."""

    unit_id: int
    job_id: int
    mailshot_id: int
    kind: str
    chunk_no: int | None
    first_seq: int | None
    last_seq: int | None
    lease_token: str
    lease_seconds: float
    attempt: int
    takeover: bool
    esp_campaign_id: str | None
    recipients_total: int | None
    chunks_total: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Unit:
        fields: dict[str, Any] = {name: data.get(name) for name in cls.__dataclass_fields__}
        return cls(**fields)

    def describe(self) -> str:
        if self.kind == "chunk":
            return f"job {self.job_id} chunk {self.chunk_no} ({self.first_seq}..{self.last_seq})"
        return f"job {self.job_id} {self.kind}"


class CrmClient:
    """The CRM's sync API (scope ``sync:work``)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def lease(
        self, worker_id: str, *, small_only: bool = False, wait_seconds: float = 0
    ) -> Unit | None:
        """The next due unit, or None; with ``wait_seconds`` the CRM holds the request
        open until a unit is queued or the time is up (a long poll)."""
        body: dict[str, Any] = {"worker_id": worker_id}
        if small_only:
            body["small_only"] = True
        if wait_seconds:
            body["wait_seconds"] = wait_seconds
        r = _call(self.http, "CRM", "POST", "/api/v1/sync/lease", json=body)
        if r.status_code == 204:
            return None
        return Unit.from_json(_json(r)["unit"])

    def _unit(self, unit: Unit, action: str, **body: Any) -> Any:
        path = f"/api/v1/sync/units/{unit.unit_id}/{action}"
        payload = {"lease_token": unit.lease_token, **body}
        return _json(_call(self.http, "CRM", "POST", path, json=payload, lease_call=True))

    def heartbeat(self, unit: Unit) -> None:
        self._unit(unit, "heartbeat")

    def campaign_fields(self, unit: Unit) -> dict[str, Any]:
        """The campaign fields of a prepare unit's job, before its snapshot is taken."""
        fields: dict[str, Any] = self._unit(unit, "campaign")
        return fields

    def prepare(self, unit: Unit) -> dict[str, Any]:
        """Have the CRM snapshot the job's audience, once the ESP campaign exists: its
        chunks become leasable while it is written."""
        fields: dict[str, Any] = self._unit(unit, "prepare")
        return fields

    def recipients(self, job_id: int, first_seq: int, last_seq: int) -> dict[str, Any]:
        r = _call(
            self.http,
            "CRM",
            "GET",
            f"/api/v1/sync/jobs/{job_id}/recipients",
            params={"first_seq": first_seq, "last_seq": last_seq},
            lease_call=True,
        )
        data: dict[str, Any] = _json(r)
        return data

    def recipients_raw(self, job_id: int, first_seq: int, last_seq: int) -> bytes:
        """The same chunk as :meth:`recipients`, as the CRM's JSON bytes (not parsed: the
        bridge forwards them to the ESP as they are)."""
        r = _call(
            self.http,
            "CRM",
            "GET",
            f"/api/v1/sync/jobs/{job_id}/recipients",
            params={"first_seq": first_seq, "last_seq": last_seq},
            lease_call=True,
        )
        body = r.content.strip()
        if not body.startswith(b"{"):
            raise TransientError(
                "BRIDGE_BAD_CHUNK", "The CRM answered a chunk of recipients that is not JSON."
            )
        return body

    def suppressed(self, unit: Unit, people: list[list[Any]]) -> dict[str, Any]:
        """Record people of the finalize unit's job the ESP will not send to."""
        out: dict[str, Any] = self._unit(unit, "suppressed", people=people)
        return out

    def complete(self, unit: Unit, **fields: Any) -> dict[str, Any]:
        out: dict[str, Any] = self._unit(unit, "complete", **fields)
        return out

    def fail(
        self,
        unit: Unit,
        *,
        permanent: bool,
        code: str,
        message: str,
        fix: str | None = None,
        retry_after_seconds: float | None = None,
        counts_as_attempt: bool = True,
    ) -> dict[str, Any]:
        out: dict[str, Any] = self._unit(
            unit,
            "fail",
            permanent=permanent,
            code=code[:64],
            message=message[:4000],
            fix=fix[:4000] if fix else None,
            retry_after_seconds=retry_after_seconds,
            counts_as_attempt=counts_as_attempt,
        )
        return out

    def refresh(self) -> list[int]:
        """Ask the CRM to queue the refreshes now due; answer the mailshot ids queued."""
        data = _json(_call(self.http, "CRM", "POST", "/api/v1/sync/refresh")) or {}
        return [int(q["mailshot_id"]) for q in data.get("queued", [])]

    def worker_heartbeat(
        self,
        worker_id: str,
        *,
        host: str,
        version: str,
        last_error: str | None,
        active: int,
        **relay: Any,
    ) -> None:
        """Say the worker is alive; ``relay`` carries what it saw of the ESP
        (``esp_reachable``, ``esp_error``, ``esp_paused``, ``esp_paused_at``) and
        ``stopping`` for its goodbye."""
        _call(
            self.http,
            "CRM",
            "POST",
            "/api/v1/integration/heartbeat",
            json={
                "worker_id": worker_id,
                "host": host,
                "version": version,
                "last_error": last_error,
                "active_units": active,
                **relay,
            },
        )


class EspClient:
    """The ESP's integrated-campaign API (scopes ``campaigns:write``, ``integration``)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def put_campaign(self, crm_mailshot_id: int, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/integrated-campaigns/{crm_mailshot_id}"
        out: dict[str, Any] = _json(_call(self.http, "ESP", "PUT", path, json=body))
        return out

    def post_recipients(
        self, crm_mailshot_id: int, snapshot: int, chunk: dict[str, Any]
    ) -> dict[str, Any]:
        payload = orjson.dumps(
            {"snapshot": snapshot, "columns": chunk["columns"], "rows": chunk["rows"]}
        )
        path = f"/api/v1/integrated-campaigns/{crm_mailshot_id}/recipients"
        out: dict[str, Any] = _json(_call(self.http, "ESP", "POST", path, content=payload))
        return out

    def post_recipients_raw(
        self, crm_mailshot_id: int, snapshot: int, chunk: bytes
    ) -> dict[str, Any]:
        """Post a chunk read with :meth:`CrmClient.recipients_raw`: its JSON object gets the
        ``snapshot`` member spliced in front, and is sent without parsing it."""
        payload = b'{"snapshot":%d,' % snapshot + chunk[1:]
        path = f"/api/v1/integrated-campaigns/{crm_mailshot_id}/recipients"
        out: dict[str, Any] = _json(_call(self.http, "ESP", "POST", path, content=payload))
        return out

    def finalize(self, crm_mailshot_id: int, snapshot: int, expected: int) -> dict[str, Any]:
        path = f"/api/v1/integrated-campaigns/{crm_mailshot_id}/finalize"
        body = {"snapshot": snapshot, "expected": expected}
        out: dict[str, Any] = _json(_call(self.http, "ESP", "POST", path, json=body))
        return out

    def suppressed_page(
        self, crm_mailshot_id: int, snapshot: int, cursor: str | None, limit: int
    ) -> dict[str, Any]:
        """One page of the snapshot's suppressed audience members (by CRM person id)."""
        params: dict[str, Any] = {"snapshot": snapshot, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        path = f"/api/v1/integrated-campaigns/{crm_mailshot_id}/suppressed"
        out: dict[str, Any] = _json(_call(self.http, "ESP", "GET", path, params=params))
        return out

    def heartbeat(self, worker_id: str, *, host: str, version: str, last_error: str | None) -> bool:
        """Say the worker is alive; answer whether the ESP's integration is paused."""
        r = _call(
            self.http,
            "ESP",
            "POST",
            "/api/v1/integration/heartbeat",
            json={
                "worker_id": worker_id,
                "host": host,
                "version": version,
                "last_error": last_error,
            },
        )
        data = _json(r) or {}
        return bool(data.get("paused", False))

    def integration_page(self) -> dict[str, Any]:
        """The ESP's integration page (paused since when, last error)."""
        out: dict[str, Any] = _json(_call(self.http, "ESP", "GET", "/api/v1/integration")) or {}
        return out
