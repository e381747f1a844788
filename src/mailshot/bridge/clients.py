"""Thin typed clients of the CRM's sync API and the ESP's integrated-campaign API, speaking
the models of :mod:`mailshot.contracts` (a chunk of recipients stays bytes throughout).

Each takes an ``httpx.Client`` already pointed at the part's base URL with the bridge's key
(:func:`make_http`), so a test can hand it the real app in-process, or a misbehaving
server. Every HTTP outcome is mapped to the bridge's error tree
(:mod:`mailshot.bridge.errors`) in one place, :func:`call`.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import TypeVar

import httpx
import orjson
from pydantic import BaseModel, ValidationError

from mailshot.bridge.errors import BridgeError, LeaseLostError, PermanentError, TransientError
from mailshot.contracts.campaign import (
    CampaignFieldsAnswer,
    CampaignPublic,
    FinalizeRequest,
    FinalizeResult,
    IntegratedCampaignPut,
    PrepareAnswer,
)
from mailshot.contracts.chunks import RecipientsWritten, with_snapshot
from mailshot.contracts.heartbeats import (
    HeartbeatIn,
    HeartbeatOut,
    IntegrationPage,
    WorkerHeartbeat,
)
from mailshot.contracts.limits import EspLimitsPut
from mailshot.contracts.sends import (
    SendFeedCursor,
    SendFeedPage,
    SendStatusAnswer,
    SendStatusBatch,
)
from mailshot.contracts.suppressed import (
    SuppressedAnswer,
    SuppressedBody,
    SuppressedPage,
    SuppressedReason,
)
from mailshot.contracts.units import (
    FAULT_CODE_MAX,
    FAULT_TEXT_MAX,
    RETRY_AFTER_MAX_SECONDS,
    CompleteBody,
    FailBody,
    LeaseAnswer,
    LeaseRequest,
    RefreshAnswer,
    TokenBody,
    UnitOutcomePublic,
    UnitPublic,
)
from mailshot.core.web.types import JsonObject

M = TypeVar("M", bound=BaseModel)

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
    """The error body's code, message and fix (whatever else the body is)."""
    try:
        body = orjson.loads(response.content)
        err = body.get("error", body) if isinstance(body, dict) else {}
    except orjson.JSONDecodeError:
        err = {}
    if not isinstance(err, dict):
        err = {}
    code = str(err.get("code") or f"HTTP_{response.status_code}")
    message = str(err.get("message") or response.reason_phrase or "no message")
    fix = err.get("fix")
    return code, message, str(fix) if fix else None


def call(
    http: httpx.Client,
    side: str,
    method: str,
    path: str,
    *,
    body: BaseModel | None = None,
    content: bytes | None = None,
    params: dict[str, str | int] | None = None,
    lease_call: bool = False,
) -> httpx.Response:
    """Make one call; answer the response if it succeeded, else raise what it means. A
    ``body`` is sent without the members at their defaults (the receiver's model is the
    same, so they mean the same)."""
    if body is not None:
        content = body.model_dump_json(exclude_defaults=True).encode()
    headers = {"Content-Type": "application/json"} if content is not None else None
    try:
        response = http.request(method, path, content=content, params=params, headers=headers)
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


def answer(response: httpx.Response, model: type[M], side: str) -> M:
    """The response's body as the contract's ``model``; a body that is not one is a fault of
    the other side, and may be fixed by the time the unit is retried."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        raise TransientError(
            "BRIDGE_BAD_ANSWER",
            f"The {side} answered {response.request.method} {response.request.url.path} with "
            f"a body that is not a {model.__name__} ({exc.error_count()} problems).",
        ) from None


class CrmClient:
    """The CRM's sync API (scope ``sync:work``)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _post(self, path: str, body: BaseModel, model: type[M], *, lease_call: bool = True) -> M:
        r = call(self.http, "CRM", "POST", path, body=body, lease_call=lease_call)
        return answer(r, model, "CRM")

    def lease(
        self, worker_id: str, *, small_only: bool = False, wait_seconds: float = 0
    ) -> UnitPublic | None:
        """The next due unit, or None; with ``wait_seconds`` the CRM holds the request
        open until a unit is queued or the time is up (a long poll)."""
        body = LeaseRequest(worker_id=worker_id, small_only=small_only, wait_seconds=wait_seconds)
        r = call(self.http, "CRM", "POST", "/api/v1/sync/lease", body=body)
        if r.status_code == 204:
            return None
        return answer(r, LeaseAnswer, "CRM").unit

    def _unit_path(self, unit: UnitPublic, action: str) -> str:
        return f"/api/v1/sync/units/{unit.unit_id}/{action}"

    def heartbeat(self, unit: UnitPublic) -> None:
        body = TokenBody(lease_token=unit.lease_token)
        call(
            self.http, "CRM", "POST", self._unit_path(unit, "heartbeat"), body=body, lease_call=True
        )

    def campaign_fields(self, unit: UnitPublic) -> CampaignFieldsAnswer:
        """The campaign fields of a prepare unit's job, before its snapshot is taken."""
        body = TokenBody(lease_token=unit.lease_token)
        return self._post(self._unit_path(unit, "campaign"), body, CampaignFieldsAnswer)

    def prepare(self, unit: UnitPublic) -> PrepareAnswer:
        """Have the CRM snapshot the job's audience, once the ESP campaign exists: its
        chunks become leasable while it is written."""
        body = TokenBody(lease_token=unit.lease_token)
        return self._post(self._unit_path(unit, "prepare"), body, PrepareAnswer)

    def recipients_raw(self, job_id: int, first_seq: int, last_seq: int) -> bytes:
        """A chunk of the job's snapshot as the CRM's JSON bytes (not parsed: the bridge
        forwards them to the ESP as they are, :meth:`EspClient.post_recipients_raw`)."""
        r = call(
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

    def suppressed(
        self, unit: UnitPublic, people: list[tuple[int, SuppressedReason]]
    ) -> SuppressedAnswer:
        """Record people of the finalize unit's job the ESP will not send to."""
        body = SuppressedBody(lease_token=unit.lease_token, people=people)
        return self._post(self._unit_path(unit, "suppressed"), body, SuppressedAnswer)

    def complete(
        self,
        unit: UnitPublic,
        *,
        recipients_written: int | None = None,
        esp_campaign_id: str | None = None,
        result: FinalizeResult | None = None,
    ) -> UnitOutcomePublic:
        body = CompleteBody(
            lease_token=unit.lease_token,
            recipients_written=recipients_written,
            esp_campaign_id=esp_campaign_id,
            result=None if result is None else result.model_dump(mode="json"),
        )
        return self._post(self._unit_path(unit, "complete"), body, UnitOutcomePublic)

    def fail(
        self,
        unit: UnitPublic,
        *,
        permanent: bool,
        code: str,
        message: str,
        fix: str | None = None,
        retry_after_seconds: float | None = None,
        counts_as_attempt: bool = True,
    ) -> UnitOutcomePublic:
        body = FailBody(
            lease_token=unit.lease_token,
            permanent=permanent,
            code=code[:FAULT_CODE_MAX],
            message=message[:FAULT_TEXT_MAX],
            fix=fix[:FAULT_TEXT_MAX] if fix else None,
            retry_after_seconds=(
                None
                if retry_after_seconds is None
                else min(max(retry_after_seconds, 0.0), RETRY_AFTER_MAX_SECONDS)
            ),
            counts_as_attempt=counts_as_attempt,
        )
        return self._post(self._unit_path(unit, "fail"), body, UnitOutcomePublic)

    def refresh(self) -> list[int]:
        """Ask the CRM to queue the refreshes now due; answer the mailshot ids queued."""
        r = call(self.http, "CRM", "POST", "/api/v1/sync/refresh")
        return [q.mailshot_id for q in answer(r, RefreshAnswer, "CRM").queued]

    def worker_heartbeat(self, beat: WorkerHeartbeat) -> None:
        """Say the worker is alive, relaying what it saw of the ESP (``stopping`` for its
        goodbye)."""
        call(self.http, "CRM", "POST", "/api/v1/integration/heartbeat", body=beat)

    def put_esp_limits(self, limits: EspLimitsPut) -> None:
        """Hand the CRM the ESP's limits, as the bridge read them."""
        call(self.http, "CRM", "PUT", "/api/v1/integration/esp-limits", body=limits)

    def send_feed_cursor(self) -> str | None:
        """Where the relay of the ESP's sends stands: the cursor the CRM last stored."""
        r = call(self.http, "CRM", "GET", "/api/v1/integration/send-status")
        return answer(r, SendFeedCursor, "CRM").cursor

    def put_send_status(self, batch: SendStatusBatch) -> SendStatusAnswer:
        """Hand the CRM sends changed in the ESP, with the feed cursor after them."""
        r = call(self.http, "CRM", "PUT", "/api/v1/integration/send-status", body=batch)
        return answer(r, SendStatusAnswer, "CRM")


class EspClient:
    """The ESP's integrated-campaign API (scopes ``campaigns:write``, ``integration``,
    ``sends:read``)."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def _campaign_path(self, crm_mailshot_id: int, action: str = "") -> str:
        return f"/api/v1/integrated-campaigns/{crm_mailshot_id}{action}"

    def put_campaign(self, crm_mailshot_id: int, body: IntegratedCampaignPut) -> CampaignPublic:
        r = call(self.http, "ESP", "PUT", self._campaign_path(crm_mailshot_id), body=body)
        return answer(r, CampaignPublic, "ESP")

    def post_recipients_raw(
        self, crm_mailshot_id: int, snapshot: int, chunk: bytes
    ) -> RecipientsWritten:
        """Post a chunk read with :meth:`CrmClient.recipients_raw`, with its ``snapshot``
        spliced in, without parsing it."""
        path = self._campaign_path(crm_mailshot_id, "/recipients")
        r = call(self.http, "ESP", "POST", path, content=with_snapshot(chunk, snapshot))
        return answer(r, RecipientsWritten, "ESP")

    def finalize(self, crm_mailshot_id: int, snapshot: int, expected: int) -> FinalizeResult:
        path = self._campaign_path(crm_mailshot_id, "/finalize")
        body = FinalizeRequest(snapshot=snapshot, expected=expected)
        return answer(call(self.http, "ESP", "POST", path, body=body), FinalizeResult, "ESP")

    def suppressed_page(
        self, crm_mailshot_id: int, snapshot: int, cursor: str | None, limit: int
    ) -> SuppressedPage:
        """One page of the snapshot's suppressed audience members (by CRM person id)."""
        params: dict[str, str | int] = {"snapshot": snapshot, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        path = self._campaign_path(crm_mailshot_id, "/suppressed")
        return answer(call(self.http, "ESP", "GET", path, params=params), SuppressedPage, "ESP")

    def sends_changed(self, after: str | None, limit: int) -> SendFeedPage:
        """Sends changed after the cursor ``after`` (None: from the first), at most
        ``limit`` (scope ``sends:read``)."""
        params: dict[str, str | int] = {"limit": limit}
        if after:
            params["changed_after"] = after
        r = call(self.http, "ESP", "GET", "/api/v1/sends", params=params)
        return answer(r, SendFeedPage, "ESP")

    def heartbeat(self, beat: HeartbeatIn) -> bool:
        """Say the worker is alive; answer whether the ESP's integration is paused."""
        r = call(self.http, "ESP", "POST", "/api/v1/integration/heartbeat", body=beat)
        return answer(r, HeartbeatOut, "ESP").paused

    def integration_page(self) -> IntegrationPage:
        """The ESP's integration page (paused since when, last error)."""
        r = call(self.http, "ESP", "GET", "/api/v1/integration")
        return answer(r, IntegrationPage, "ESP")

    def limits(self) -> JsonObject:
        """The ESP's limits, as the JSON object it answered (relayed to the CRM as it came:
        the CRM reads what it knows of it and keeps the rest)."""
        r = call(self.http, "ESP", "GET", "/api/v1/limits")
        try:
            limits = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            limits = None
        if not isinstance(limits, dict):
            raise BridgeError("BRIDGE_BAD_LIMITS", "The ESP's limits are not a JSON object.")
        return limits
