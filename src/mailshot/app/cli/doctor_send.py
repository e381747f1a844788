"""The send half of ``mailshot doctor CAMPAIGN``: the ESP's diagnosis of the campaign's send
(``GET /sends/{id}/diagnosis``, with the CLI's ESP key: paused, scheduled, all deferred,
no send worker, rate limit, in doubt), and what only this machine can try with its
settings: a short connection to each configured relay (unreachable, login refused). Each
check names the ESP page that shows it."""

from __future__ import annotations

from typing import Any

from mailshot.app.cli.common import RemoteError
from mailshot.app.cli.esp_api import EspApi, open_esp
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.esp.sending.config import effective_relays
from mailshot.esp.sending.probe import probe_all

#: Send states in which nothing more will go out.
FINISHED = {"sent", "cancelled", "failed"}


def _check(
    name: str,
    status: str,
    message: str,
    fix: str = "",
    code: str | None = None,
    page: str = "",
) -> dict[str, Any]:
    return {
        "check": name,
        "status": status,
        "message": message,
        "fix": fix,
        "code": code,
        "page": page,
    }


def relay_checks(settings: Settings, page: str = "") -> list[dict[str, Any]]:
    """Try each relay the send workers use (the Outbox when none is configured)."""
    out = []
    for result in probe_all(effective_relays(settings)):
        name = f"relay_{result.relay}"
        if result.ok:
            out.append(_check(name, "pass", f"The relay {result.relay} answers and accepts us."))
        else:
            code = result.spec.code if result.spec else None
            out.append(_check(name, "fail", result.message, result.fix, code, page))
    return out


def send_checks(
    settings: Settings, esp: EspApi, ref: str, esp_base: str, *, relays: bool = True
) -> list[dict[str, Any]]:
    """The checks of the send of campaign ``ref`` (its CRM mailshot id or exact name)."""
    base = esp_base.rstrip("/")
    try:
        campaign = esp.find_campaign(ref)
    except AppError as err:
        return [_check("send", "warn", err.message, err.fix, err.code, f"{base}/campaigns")]
    except RemoteError as err:
        return [_check("send", "fail", err.message, err.fix, err.code)]
    page = f"{base}/campaigns/{campaign['id']}"
    try:
        send = esp.campaign_send(int(campaign["crm_mailshot_id"]))
    except RemoteError as err:
        if err.code != "SEND_NOT_FOUND":
            return [_check("send", "fail", err.message, err.fix, err.code, page)]
        found = [
            _check(
                "send",
                "pass",
                f"The campaign '{campaign.get('name')}' has not been sent yet.",
                "Send it from its page (Send now), or `mailshot send CAMPAIGN`.",
                page=page,
            )
        ]
        return found + (relay_checks(settings, page) if relays else [])
    diagnosis = esp.send_diagnosis(int(send["id"]))
    out = [
        _check(
            f["check"],
            f["status"],
            f["message"],
            f.get("fix") or "",
            f.get("code"),
            f"{base}{f['page']}" if f.get("page") else page,
        )
        for f in diagnosis.get("findings", [])
    ]
    if relays and send.get("state") not in FINISHED:
        out += relay_checks(settings, f"{page}/send/recipients?state=deferred")
    return out


def run_send_checks(settings: Settings, ref: str, esp_url: str | None) -> list[dict[str, Any]]:
    """Open the ESP with the CLI's key and check the send of ``ref``."""
    base = (esp_url or settings.esp_base_url()).rstrip("/")
    try:
        esp = open_esp(settings, base)
    except AppError as err:
        # Without the ESP's key the send cannot be looked at: said, but the sync's checks
        # (which need no ESP key) decide the verdict.
        why = f"The send was not checked: {err.message[0].lower()}{err.message[1:]}"
        return [_check("esp_cli_key", "warn", why, err.fix, err.code)]
    try:
        return send_checks(settings, esp, ref, base)
    except AppError as err:
        return [_check("esp_reachable", "fail", err.message, err.fix, err.code)]
    except RemoteError as err:
        return [_check("send", "fail", err.message, err.fix, err.code)]
    finally:
        esp.close()
