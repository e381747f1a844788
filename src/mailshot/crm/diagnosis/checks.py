"""The integration's checks: small pure functions over gathered facts, each answering
pass, warn or fail with one sentence, the fix and, where one exists, the catalogued code:
:func:`integration_key`, :func:`integration_running`, :func:`integration_paused`,
:func:`esp_reachable`, :func:`esp_limits`, :func:`recent_failures`. A mailshot's are
:mod:`mailshot.crm.diagnosis.mailshot_checks`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mailshot.core.access.auth import AUTH_ERRORS
from mailshot.core.access.tokens import KeyRefusal, check_key_state
from mailshot.core.errors import ErrorSpec
from mailshot.crm.diagnosis import errors as codes
from mailshot.crm.diagnosis.facts import (
    IntegrationFacts,
    KeyFacts,
)
from mailshot.crm.diagnosis.schemas import CheckResult, Status

#: A key that ends sooner than this is a warning.
EXPIRY_WARNING = timedelta(days=14)


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"


def ago(now: datetime, moment: datetime) -> str:
    seconds = max(0, round((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def result_of(
    check: str,
    status: Status,
    spec: ErrorSpec | None = None,
    *,
    message: str = "",
    fix: str = "",
    details: dict[str, Any] | None = None,
    **params: Any,
) -> CheckResult:
    """One check's answer; with ``spec``, its message and fix rendered from the catalogue."""
    code = None
    if spec is not None:
        rendered, rendered_fix = spec.render(params)
        message = message or rendered
        fix = fix or rendered_fix
        code = spec.code
    return CheckResult(
        check=check, status=status, message=message, fix=fix, code=code, details=details
    )


# ---- the integration -----------------------------------------------------------------------
def _key_refusal(key: KeyFacts, now: datetime) -> KeyRefusal | None:
    return check_key_state(
        enabled=key.enabled,
        valid_from=key.valid_from,
        until=key.until,
        user_enabled=key.user_enabled,
        permitted_ips=None,
        client_ip=None,
        now=now,
    )


def _validity(key: KeyFacts) -> str:
    start = f"valid from {when(key.valid_from)}" if key.valid_from else "valid from creation"
    end = f"until {when(key.until)}" if key.until else "with no end date"
    return f"{start} {end}"


def _key_details(key: KeyFacts, state: KeyRefusal | None) -> dict[str, Any]:
    return {
        "key_id": key.id,
        "key_name": key.name,
        "prefix": key.prefix,
        "enabled": key.enabled,
        "valid_from": key.valid_from.isoformat() if key.valid_from else None,
        "until": key.until.isoformat() if key.until else None,
        "user": key.user_email,
        "user_enabled": key.user_enabled,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "state": state.value if state else "active",
    }


def integration_key(facts: IntegrationFacts) -> CheckResult:
    """The integration user's keys: exists, enabled, valid from, until, expiring within 14
    days, its user enabled, and the last refused use and why."""
    name = "integration_key"
    now = facts.now
    if not facts.keys:
        return result_of(name, "fail", codes.INTEGRATION_KEY_MISSING)
    states = {k.id: _key_refusal(k, now) for k in facts.keys}
    refusal = facts.refusals[0] if facts.refusals else None
    usable = [k for k in facts.keys if states[k.id] is None]
    if not usable:
        # The key the bridge most likely holds: the one refused last, else used last.
        by_prefix = {k.prefix: k for k in facts.keys}
        key = (by_prefix.get(refusal.key_prefix or "") if refusal else None) or max(
            facts.keys, key=lambda k: (k.last_used_at or k.created_at, k.id)
        )
        state = states[key.id]
        assert state is not None
        spec = AUTH_ERRORS[state]
        message, fix = spec.render(
            {
                "key_name": key.name,
                "valid_from": when(key.valid_from),
                "until": when(key.until),
                "user": key.user_email,
            }
        )
        tried = (
            f" The bridge was last refused at {when(refusal.at)} ({refusal.reason})."
            if refusal
            else ""
        )
        return CheckResult(
            check=name,
            status="fail",
            code=spec.code,
            message=f"{message} It is the integration's key ({key.prefix}, {_validity(key)})."
            + tried,
            fix=fix + " The bridge carries on by itself once the key is accepted.",
            details=_key_details(key, state),
        )
    key = max(usable, key=lambda k: (k.last_used_at or k.created_at, k.id))
    heard = max(
        [t for t in (key.last_used_at, facts.view.last_heartbeat_at) if t is not None],
        default=None,
    )
    if refusal is not None and (heard is None or refusal.at > heard):
        return result_of(
            name,
            "warn",
            codes.INTEGRATION_KEY_REFUSED,
            details=_key_details(key, None),
            at=when(refusal.at),
            prefix=refusal.key_prefix or "(none)",
            reason=refusal.reason,
        )
    ending = [k for k in usable if k.until is None or k.until - now > EXPIRY_WARNING]
    if not ending:
        last = max(usable, key=lambda k: k.until or now)
        assert last.until is not None
        return result_of(
            name,
            "warn",
            codes.INTEGRATION_KEY_EXPIRING,
            details=_key_details(last, None),
            key_name=last.name,
            prefix=last.prefix,
            until=when(last.until),
            days=max(0, (last.until - now).days),
            key_id=last.id,
        )
    used = f"last used {when(key.last_used_at)}" if key.last_used_at else "not used yet"
    return result_of(
        name,
        "pass",
        message=f"The integration key '{key.name}' ({key.prefix}) is enabled and "
        f"{_validity(key)}; its user {key.user_email} is enabled; {used}.",
        details=_key_details(key, None),
    )


def integration_running(facts: IntegrationFacts) -> CheckResult:
    """Some bridge worker heartbeat within the last minute (and did not say goodbye)."""
    view, now = facts.view, facts.now
    alive = [w for w in view.workers if w.alive]
    if alive:
        return result_of(
            "integration_running",
            "pass",
            message=f"{len(alive)} bridge worker(s) running; the last heartbeat was "
            f"{ago(now, alive[0].last_heartbeat_at)}.",
            details={"workers": len(alive), "last_heartbeat_at": alive[0].last_heartbeat_at},
        )
    if not view.workers:
        said = "no worker has ever reported to the CRM"
    else:
        latest = view.workers[0]
        if latest.stopped_at is not None:
            said = f"the last one stopped at {when(latest.stopped_at)}"
        else:
            said = f"the last heartbeat was {ago(now, latest.last_heartbeat_at)}"
    return result_of(
        "integration_running",
        "fail",
        codes.INTEGRATION_NOT_RUNNING,
        details={"last_heartbeat_at": view.last_heartbeat_at},
        when=said,
    )


def integration_paused(facts: IntegrationFacts) -> CheckResult:
    """Whether the ESP's integration is paused, as the bridge last relayed it."""
    view = facts.view
    if view.paused is None:
        return result_of(
            "integration_paused",
            "warn",
            message="Not known: no bridge worker has relayed what the ESP says.",
            fix="Start the bridge; `mailshot doctor` also asks the ESP directly.",
        )
    if view.paused:
        return result_of(
            "integration_paused",
            "fail",
            codes.INTEGRATION_PAUSED_AT_ESP,
            details={"paused_at": view.paused_at},
            since=when(view.paused_at) if view.paused_at else "an unknown time",
        )
    return result_of(
        "integration_paused", "pass", message="The ESP's integration is running (not paused)."
    )


def esp_reachable(facts: IntegrationFacts) -> CheckResult:
    """Whether the bridge reached the ESP at its last try (its relayed report)."""
    view, now = facts.view, facts.now
    if view.esp_reachable is None:
        return result_of(
            "esp_reachable",
            "warn",
            message="Not known: no bridge worker has reported reaching the ESP.",
            fix="Start the bridge; `mailshot doctor` also probes the ESP directly.",
        )
    details = {"esp_ok_at": view.esp_ok_at, "error": view.esp_error}
    if not view.esp_reachable:
        error = view.esp_error or "no answer"
        if error.startswith("AUTH_"):
            return result_of(
                "esp_reachable", "fail", codes.ESP_REFUSES_BRIDGE_KEY, details=details, error=error
            )
        return result_of(
            "esp_reachable",
            "fail",
            codes.ESP_UNREACHABLE,
            details=details,
            at=when(view.last_heartbeat_at),
            error=error,
        )
    seen = ago(now, view.esp_ok_at) if view.esp_ok_at else "recently"
    return result_of(
        "esp_reachable",
        "pass",
        message=f"The bridge reached the ESP {seen}.",
        details=details,
    )


def esp_limits(facts: IntegrationFacts) -> CheckResult:
    if not facts.limits_known:
        return result_of("esp_limits", "warn", codes.ESP_LIMITS_UNKNOWN)
    return result_of(
        "esp_limits",
        "pass",
        message=f"The CRM knows the ESP's limits (read {when(facts.limits_read_at)}).",
    )


def recent_failures(facts: IntegrationFacts) -> CheckResult:
    latest = facts.latest_failure
    if facts.failed_24h and latest:
        return result_of(
            "recent_failures",
            "warn",
            codes.SYNC_FAILED_RECENTLY,
            count=facts.failed_24h,
            name=latest["name"],
            error_code=latest["code"],
            error_message=latest["message"],
            mailshot_id=latest["mailshot_id"],
        )
    return result_of(
        "recent_failures",
        "pass",
        message=f"No sync failed in the last 24 hours; {facts.active_jobs} queued or running.",
    )


# ---- one mailshot -----------------------------------------------------------------------
