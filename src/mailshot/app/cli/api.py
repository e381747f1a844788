"""The command line's client of the CRM API: find a mailshot, press Synchronise, read its
progress and the sync queue. :func:`open_api` builds it from the settings and the CLI's
key; every failure becomes a catalogued error
(:class:`~mailshot.app.cli.common.RemoteError` for the API's own)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from mailshot.app.cli.common import RemoteError
from mailshot.app.cli.errors import (
    CLI_BAD_RESPONSE,
    CLI_CRM_UNREACHABLE,
    CLI_MAILSHOT_AMBIGUOUS,
    CLI_MAILSHOT_NOT_FOUND,
    CLI_NO_API_KEY,
)
from mailshot.core import credentials
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings

__all__ = ["CrmApi", "open_api", "resolve_key"]

TIMEOUT = httpx.Timeout(30.0, connect=5.0)
#: The I/O seam: None means the network; tests put an ``httpx.MockTransport`` here.
transport: httpx.BaseTransport | None = None


def resolve_key(settings: Settings) -> str:
    """The CRM key the CLI uses: ``MAILSHOT_API_KEY``, else the provisioned ``cli_key``."""
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    saved = credentials.load(settings.credentials_file).cli_key
    if saved is None:
        raise AppError(CLI_NO_API_KEY, path=str(settings.credentials_file))
    return saved.get_secret_value()


class CrmApi:
    """Typed calls to the CRM API; ``client.base_url`` ends with ``/api/v1/``."""

    #: The error of a server that cannot be reached.
    unreachable = CLI_CRM_UNREACHABLE

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def close(self) -> None:
        self.client.close()

    # ---- plumbing -------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            reason = type(exc).__name__ if not str(exc) else str(exc)
            raise AppError(self.unreachable, url=str(self.client.base_url), reason=reason) from exc
        try:
            body = orjson.loads(resp.content) if resp.content else None
        except orjson.JSONDecodeError:
            body = None
            if resp.is_success:
                raise AppError(
                    CLI_BAD_RESPONSE, status=resp.status_code, body=resp.text[:200]
                ) from None
        if resp.is_success:
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and "code" in error:
            raise RemoteError(
                str(error["code"]),
                str(error.get("message", "")),
                str(error.get("fix", "")),
                resp.status_code,
            )
        raise AppError(CLI_BAD_RESPONSE, status=resp.status_code, body=resp.text[:200])

    # ---- mailshots ------------------------------------------------------------------
    def get_mailshot(self, mailshot_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self._request("GET", f"mailshots/{mailshot_id}")
        return found

    def find_mailshot(self, ref: str) -> dict[str, Any]:
        """The mailshot whose id is ``ref`` (digits) or whose name is exactly ``ref``."""
        ref = ref.strip()
        if ref.isdigit():
            try:
                return self.get_mailshot(int(ref))
            except RemoteError as exc:
                if exc.status != 404:
                    raise
        page = self._request("GET", "mailshots", params={"name": ref, "limit": 50})
        items = page.get("items", []) if isinstance(page, dict) else []
        # The CRM filters by exact name; compare again in case a server is more lenient.
        matches = [m for m in items if m.get("name") == ref]
        if not matches:
            raise AppError(CLI_MAILSHOT_NOT_FOUND, ref=ref)
        if len(matches) > 1:
            ids = ", ".join(str(m.get("id")) for m in matches)
            raise AppError(CLI_MAILSHOT_AMBIGUOUS, ref=ref, count=len(matches), ids=ids)
        return dict(matches[0])

    # ---- sync -----------------------------------------------------------------------
    def synchronise(self, mailshot_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("POST", f"mailshots/{mailshot_id}/synchronise")
        return answer

    def progress(self, mailshot_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("GET", f"mailshots/{mailshot_id}/sync")
        return answer

    def queue(self) -> list[dict[str, Any]]:
        answer = self._request("GET", "sync/queue")
        if isinstance(answer, dict):
            for key in ("items", "jobs", "queue"):
                if isinstance(answer.get(key), list):
                    return list(answer[key])
            raise AppError(CLI_BAD_RESPONSE, status=200, body=str(answer)[:200])
        return list(answer or [])


def open_api(settings: Settings, crm_url: str | None = None) -> CrmApi:
    """A :class:`CrmApi` on the CRM named by the settings (or ``crm_url``)."""
    base = (crm_url or settings.crm_base_url()).rstrip("/")
    client = httpx.Client(
        base_url=f"{base}/api/v1/",
        headers={"Authorization": f"Bearer {resolve_key(settings)}"},
        timeout=TIMEOUT,
        transport=transport,
    )
    return CrmApi(client)
