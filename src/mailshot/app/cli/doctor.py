"""``mailshot doctor [MAILSHOT] [--json]``: the CRM's diagnosis checks of one mailshot (or
of the integration), the ESP's diagnosis of its send (:mod:`.doctor_send`, relays tried from
here), and what only the operator's machine sees: whether both parts answer at their URLs
and accept the bridge's key. Exit code 1 when a check fails (warnings alone are 0)."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import orjson
import typer
from pydantic import SecretStr
from rich.table import Table

from mailshot.app.cli import api as api_module
from mailshot.app.cli.common import (
    EXIT_ERROR,
    EXIT_OK,
    RemoteError,
    console,
    json_text,
    load_settings,
    shown,
)
from mailshot.app.cli.doctor_send import run_send_checks
from mailshot.app.cli.errors import CLI_CRM_UNREACHABLE
from mailshot.core import credentials
from mailshot.core.errors import AppError, ErrorSpec, define
from mailshot.core.settings import Settings

CLI_ESP_UNREACHABLE = define(
    "CLI_ESP_UNREACHABLE",
    503,
    "Cannot reach the ESP at {url} ({reason}).",
    "Start it (`mailshot serve`), or point MAILSHOT_ESP_URL at it; the bridge retries by "
    "itself once it answers.",
    part="cli",
)
CLI_BRIDGE_KEY_MISSING = define(
    "CLI_BRIDGE_KEY_MISSING",
    401,
    "The bridge has no {side} API key: neither MAILSHOT_BRIDGE_{side}_KEY nor {path} holds one.",
    "Run `mailshot serve` once on this data folder (it provisions the keys), or set "
    "MAILSHOT_BRIDGE_{side}_KEY.",
    part="cli",
)

_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}
_SEVERITY = {"pass": 0, "warn": 1, "fail": 2}


def _check(
    name: str, status: str, message: str, fix: str = "", code: str | None = None
) -> dict[str, Any]:
    return {"check": name, "status": status, "message": message, "fix": fix, "code": code}


def _from_error(name: str, err: AppError | RemoteError) -> dict[str, Any]:
    return _check(name, "fail", err.message, err.fix, err.code)


def _spec_check(name: str, spec: ErrorSpec, **params: Any) -> dict[str, Any]:
    return _from_error(name, AppError(spec, **params))


def _client(base: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base.rstrip('/')}/api/v1/",
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(10.0, connect=3.0),
        transport=api_module.transport,
    )


def _get(client: httpx.Client, path: str, side: str) -> Any:
    """GET ``path``; the body on success, else a catalogued error (unreachable, refused)."""
    try:
        resp = client.get(path)
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        url = str(client.base_url).removesuffix("/api/v1/")
        if side == "ESP":
            raise AppError(CLI_ESP_UNREACHABLE, url=url, reason=reason) from exc
        raise AppError(CLI_CRM_UNREACHABLE, url=url, reason=reason) from exc
    try:
        body = orjson.loads(resp.content) if resp.content else None
    except orjson.JSONDecodeError:
        body = None
    if resp.is_success:
        return body
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    raise RemoteError(
        str(error.get("code") or f"HTTP_{resp.status_code}"),
        str(error.get("message") or resp.reason_phrase),
        str(error.get("fix") or ""),
        resp.status_code,
    )


def _crm_diagnosis(
    settings: Settings, crm_base: str, mailshot: str | None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The CRM's diagnosis (None if it cannot be had) and the checks of getting it."""
    try:
        key = api_module.resolve_key(settings)
    except AppError as err:
        return None, [_from_error("cli_key", err)]
    crm = api_module.CrmApi(_client(crm_base, key))
    try:
        if mailshot is None:
            diag = _get(crm.client, "diagnosis", "CRM")
        else:
            found = crm.find_mailshot(mailshot)
            diag = _get(crm.client, f"mailshots/{found['id']}/diagnosis", "CRM")
    except AppError as err:
        name = "crm_reachable" if err.code == "CLI_CRM_UNREACHABLE" else "mailshot"
        return None, [_from_error(name, err)]
    except RemoteError as err:
        name = "cli_key" if err.status in (401, 403) else "crm_diagnosis"
        return None, [_check("crm_reachable", "pass", "The CRM answers."), _from_error(name, err)]
    finally:
        crm.close()
    return diag, [_check("crm_reachable", "pass", f"The CRM answers at {crm_base}.")]


def _bridge_key(settings: Settings, side: str) -> SecretStr | None:
    saved = credentials.load(settings.credentials_file)
    if side == "CRM":
        return settings.bridge_crm_key or saved.crm_integration_key
    return settings.bridge_esp_key or saved.esp_integration_key


def _probe(settings: Settings, side: str, base: str) -> list[dict[str, Any]]:
    """Whether ``side`` answers and accepts the bridge's key (and, for the ESP, whether its
    integration is paused, as it says itself)."""
    name = f"bridge_{side.lower()}_key"
    key = _bridge_key(settings, side)
    if key is None:
        path = str(settings.credentials_file)
        return [_spec_check(name, CLI_BRIDGE_KEY_MISSING, side=side, path=path)]
    with _client(base, key.get_secret_value()) as client:
        try:
            page = _get(client, "integration", side)
        except AppError as err:
            return [_from_error(f"{side.lower()}_reachable", err)]
        except RemoteError as err:
            return [_from_error(name, err)]
    out = [_check(name, "pass", f"The {side} accepts the bridge's key.")]
    if side == "ESP" and isinstance(page, dict):
        if page.get("paused"):
            since = page.get("paused_at") or "an unknown time"
            out.append(
                _check(
                    "esp_integration",
                    "fail",
                    f"The ESP says its integration is paused (since {since}).",
                    "An ESP administrator resumes it (Tools > Integration, or POST "
                    "/esp/api/v1/integration/resume).",
                    "INTEGRATION_PAUSED_AT_ESP",
                )
            )
        else:
            out.append(_check("esp_integration", "pass", "The ESP says its integration is on."))
    return out


def _verdict(checks: list[dict[str, Any]]) -> str:
    return max((c["status"] for c in checks), key=lambda s: _SEVERITY.get(s, 2), default="pass")


def run(
    settings: Settings, mailshot: str | None, crm_url: str | None, esp_url: str | None
) -> dict[str, Any]:
    """The whole report as data (what ``--json`` prints)."""
    crm_base = (crm_url or settings.crm_base_url()).rstrip("/")
    esp_base = (esp_url or settings.esp_base_url()).rstrip("/")
    diag, own = _crm_diagnosis(settings, crm_base, mailshot)
    probes = [*_probe(settings, "CRM", crm_base), *_probe(settings, "ESP", esp_base)]
    checks = [*own, *(diag or {}).get("checks", []), *probes]
    if mailshot is not None:
        ref = str((diag or {}).get("mailshot_id") or mailshot)
        checks += run_send_checks(settings, ref, esp_base)
    fails = [c for c in checks if c["status"] == "fail"]
    summary = (diag or {}).get("summary") or ""
    if fails and (diag is None or diag.get("verdict") != "fail"):
        summary = fails[0]["message"]
    return {
        "mailshot_id": (diag or {}).get("mailshot_id"),
        "mailshot_name": (diag or {}).get("mailshot_name"),
        "verdict": _verdict(checks),
        "summary": summary or "Every check passed.",
        "checks": checks,
    }


def _show(report: dict[str, Any]) -> None:
    name = report.get("mailshot_name")
    title = f"Diagnosis of '{name}'" if name else "Diagnosis of the integration"
    table = Table(title=shown(title), show_lines=False)
    for header in ("Check", "Status", "What it found", "Fix"):
        table.add_column(header, overflow="fold")
    for c in report["checks"]:
        style = _STYLE.get(c["status"], "")
        code = f" [dim]({shown(c['code'])})[/]" if c.get("code") else ""
        page = f" [dim]See {shown(c['page'])}[/]" if c.get("page") else ""
        table.add_row(
            shown(c["check"]),
            f"[{style}]{shown(str(c['status']).upper())}[/]",
            shown(c["message"]) + code,
            shown(c.get("fix") or "") + page,
        )
    console.print(table)
    style = _STYLE.get(report["verdict"], "")
    verdict = shown(str(report["verdict"]).upper())
    console.print(f"[{style}]{verdict}[/]: {shown(report['summary'])}")


def doctor(
    mailshot: Annotated[
        str | None,
        typer.Argument(
            help="A mailshot (its id or exact name): its sync and its campaign's send; "
            "without one, check the whole integration."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the checks as JSON instead of a table.")
    ] = False,
    crm_url: Annotated[
        str | None,
        typer.Option("--crm-url", help="Base URL of the CRM (default: MAILSHOT_CRM_URL)."),
    ] = None,
    esp_url: Annotated[
        str | None,
        typer.Option("--esp-url", help="Base URL of the ESP (default: MAILSHOT_ESP_URL)."),
    ] = None,
) -> None:
    """Run every check of a mailshot's sync and send (or of the integration): pass, warn or
    fail, each with a sentence, the fix and the page that shows it. Exit 1 when any check
    fails."""
    settings = load_settings()
    report = run(settings, mailshot, crm_url, esp_url)
    if as_json:
        typer.echo(json_text(report))
    else:
        _show(report)
    raise typer.Exit(EXIT_ERROR if report["verdict"] == "fail" else EXIT_OK)
