"""The command line's client of the ESP API (``mailshot send``): find a campaign, start
its send, read the send. Like :class:`~mailshot.app.cli.api.CrmApi`, it takes an
``httpx.Client`` whose base URL is the ESP's ``/api/v1/``; :func:`open_esp` builds it from
the settings, with the key from ``MAILSHOT_ESP_API_KEY`` or the provisioned ``esp_cli_key``."""

from __future__ import annotations

from typing import Any

import httpx

from mailshot.app.cli import api
from mailshot.app.cli.common import RemoteError
from mailshot.app.cli.errors import CLI_CAMPAIGN_NOT_FOUND, CLI_NO_ESP_KEY, CLI_SEND_ESP_UNREACHABLE
from mailshot.core import credentials
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings


def resolve_esp_key(settings: Settings) -> str:
    if settings.esp_api_key is not None:
        return settings.esp_api_key.get_secret_value()
    saved = credentials.load(settings.credentials_file).esp_cli_key
    if saved is None:
        raise AppError(CLI_NO_ESP_KEY, path=str(settings.credentials_file))
    return saved.get_secret_value()


class EspApi(api.CrmApi):
    """Typed calls to the ESP API."""

    unreachable = CLI_SEND_ESP_UNREACHABLE

    def find_campaign(self, ref: str) -> dict[str, Any]:
        """The integrated campaign of CRM mailshot ``ref`` (digits), or named exactly ``ref``."""
        ref = ref.strip()
        if ref.isdigit():
            try:
                found: dict[str, Any] = self._request("GET", f"integrated-campaigns/{ref}")
                return found
            except RemoteError as exc:
                if exc.status != 404:
                    raise
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = self._request("GET", "campaigns", params=params)
            for item in page.get("items", []):
                if item.get("name") == ref and item.get("crm_mailshot_id") is not None:
                    return dict(item)
            cursor = page.get("next_cursor")
            if not cursor:
                raise AppError(CLI_CAMPAIGN_NOT_FOUND, ref=ref)

    def send(self, crm_mailshot_id: int, at: str | None) -> dict[str, Any]:
        body = {"at": at} if at else None
        answer: dict[str, Any] = self._request(
            "POST", f"integrated-campaigns/{crm_mailshot_id}/send", json=body
        )
        return answer

    def get_send(self, send_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("GET", f"sends/{send_id}")
        return answer

    def campaign_send(self, crm_mailshot_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self._request(
            "GET", f"integrated-campaigns/{crm_mailshot_id}/send"
        )
        return answer

    def send_diagnosis(self, send_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("GET", f"sends/{send_id}/diagnosis")
        return answer


def open_esp(settings: Settings, esp_url: str | None = None) -> EspApi:
    base = (esp_url or settings.esp_base_url()).rstrip("/")
    client = httpx.Client(
        base_url=f"{base}/api/v1/",
        headers={"Authorization": f"Bearer {resolve_esp_key(settings)}"},
        timeout=api.TIMEOUT,
        transport=api.transport,
    )
    return EspApi(client)
