"""A mailshot's checks, pure functions over its gathered facts like the integration's
(:mod:`mailshot.crm.diagnosis.checks`): :func:`sync_state`, :func:`name_and_fields`,
:func:`last_error`, :func:`audience`; :func:`measured_rate` and :func:`start_eta` are the
queue arithmetic.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailshot.contracts.states import JobState, SyncState
from mailshot.core.errors import CATALOGUE
from mailshot.crm.diagnosis import errors as codes
from mailshot.crm.diagnosis.checks import result_of, when
from mailshot.crm.diagnosis.facts import AudienceFacts, MailshotFacts, RateSample
from mailshot.crm.diagnosis.schemas import CheckResult
from mailshot.crm.sync.states import JOB_ACTIVE


def measured_rate(samples: list[RateSample]) -> float | None:
    """Recipients per second over recent completed syncs (None: nothing measured yet)."""
    recipients = sum(s.recipients for s in samples if s.seconds > 0)
    seconds = sum(s.seconds for s in samples if s.seconds > 0)
    return recipients / seconds if recipients > 0 and seconds > 0 else None


def start_eta(ahead_remaining: int, rate: float | None) -> float | None:
    """Seconds until the syncs ahead are written, at the measured rate."""
    if rate is None:
        return None
    return ahead_remaining / rate


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def sync_state(facts: MailshotFacts) -> CheckResult:
    """Its state, its place in the queue and an ETA from measured rates."""
    st = facts.status
    details: dict[str, Any] = {
        "state": st.state,
        "job_state": st.job_state,
        "queue_position": st.queue_position,
        "eta_seconds": st.eta_seconds,
    }
    if st.state in (SyncState.NOT_SYNCHRONISED, SyncState.CANCELLED):
        return result_of(
            "sync_state",
            "warn",
            codes.MAILSHOT_NOT_SYNCHRONISED,
            details=details,
            name=facts.name,
            state=st.state.replace("_", " "),
            mailshot_id=facts.mailshot_id,
        )
    if st.state == SyncState.FAILED:
        err = st.last_error
        return result_of(
            "sync_state",
            "fail",
            message=f"The last sync failed ({err.code}: {err.message})"
            if err
            else "The last sync failed.",
            fix="Correct what the last_error check names, then press Retry.",
            details=details,
        )
    if st.job_state == JobState.QUEUED and st.queue_position:
        rate = measured_rate(facts.rate_samples)
        eta = start_eta(facts.ahead_remaining, rate)
        details.update({"rate_per_second": rate, "start_eta_seconds": eta})
        message = f"Queued, {_ordinal(st.queue_position)} in line"
        if st.queue_position == 1:
            message += "; it starts with the next free worker."
        elif eta is not None:
            unsized = f" (and {facts.ahead_unsized} not yet counted)" if facts.ahead_unsized else ""
            message += (
                f"; at the measured rate of {rate:,.0f} recipients/s the "
                f"{facts.ahead_remaining:,} recipients ahead{unsized} need about {eta:,.0f} s."
            )
        else:
            message += "; no sync has completed yet, so there is no measured rate for an ETA."
        return result_of("sync_state", "pass", message=message, details=details)
    if st.job_state in JOB_ACTIVE:
        return result_of("sync_state", "pass", message=st.summary, details=details)
    return result_of("sync_state", "pass", message=st.summary, details=details)


def name_and_fields(facts: MailshotFacts) -> CheckResult:
    """Name and fields against the ESP's limits (the preflight's rules)."""
    details: dict[str, Any] = {"problems": [p.as_dict() for p in facts.problems]}
    if facts.problems:
        spec = CATALOGUE.get("SYNC_PREFLIGHT_FAILED")
        text = "; ".join(p.message for p in facts.problems)
        return CheckResult(
            check="name_and_fields",
            status="fail",
            code=spec.code if spec else None,
            message=f"The mailshot cannot be synchronised as it is: {text}",
            fix="Correct these fields (for a name, rename the mailshot) and press Synchronise "
            "again; nothing needs deleting.",
            details=details,
        )
    if facts.warnings:
        return CheckResult(
            check="name_and_fields",
            status="warn",
            code=codes.ESP_LIMITS_UNKNOWN.code,
            message="The fields look complete, but "
            + facts.warnings[0][0].lower()
            + facts.warnings[0][1:],
            fix=codes.ESP_LIMITS_UNKNOWN.fix,
            details=details,
        )
    return CheckResult(
        check="name_and_fields",
        status="pass",
        message="The name and every field are within the ESP's limits.",
        details=details,
    )


def last_error(facts: MailshotFacts, now: datetime) -> CheckResult:
    """The last error of its sync, and when it is retried."""
    st = facts.status
    err = st.last_error
    if err is None:
        return result_of("last_error", "pass", message="No error so far.")
    known = CATALOGUE.get(err.code)
    fix = err.fix or (known.fix if known else "")
    details = {"code": err.code, "next_retry_at": st.next_retry_at, "attempts": st.attempts}
    if st.job_state == JobState.FAILED or (st.job_state is None and st.state == SyncState.FAILED):
        return CheckResult(
            check="last_error",
            status="fail",
            code=err.code,
            message=err.message,
            fix=fix,
            details=details,
        )
    if st.job_state in JOB_ACTIVE:
        retry = st.next_retry_at
        at = f"{when(retry)} (in {max(0, (retry - now).total_seconds()):.0f} s)" if retry else "now"
        return result_of(
            "last_error",
            "warn",
            codes.SYNC_RETRY_PENDING,
            details=details,
            error_code=err.code,
            error_message=err.message,
            at=at,
        )
    return result_of(
        "last_error",
        "pass",
        message=f"An earlier try failed ({err.code}), but the sync went on.",
        details=details,
    )


def _reasons(excluded: dict[str, int]) -> str:
    parts = [f"{n:,} {r.replace('_', ' ')}" for r, n in excluded.items() if n]
    return ", ".join(parts) if parts else "nobody"


def audience(facts: AudienceFacts) -> CheckResult:
    """The audience's size and who was left out, and why."""
    details: dict[str, Any] = {
        "included": facts.included,
        "excluded": facts.excluded,
        "from_snapshot": facts.from_snapshot,
    }
    if facts.error_code:
        return CheckResult(
            check="audience",
            status="fail",
            code=facts.error_code,
            message=facts.error_message,
            fix=facts.error_fix,
            details=details,
        )
    if facts.included is None:
        return result_of(
            "audience", "pass", message="The audience is counted when the sync starts."
        )
    left_out = sum(facts.excluded.values())
    where = "in the sync's snapshot" if facts.from_snapshot else "counted now"
    if facts.included == 0:
        spec = CATALOGUE["SYNC_AUDIENCE_EMPTY"]
        return CheckResult(
            check="audience",
            status="fail",
            code=spec.code,
            message=f"Nobody is left in the audience ({where}): {left_out:,} left out "
            f"({_reasons(facts.excluded)}).",
            fix="Change the list or the people (see who was left out and why), then press "
            "Synchronise again.",
            details=details,
        )
    return result_of(
        "audience",
        "pass",
        message=f"{facts.included:,} recipients ({where}); {left_out:,} left out "
        f"({_reasons(facts.excluded)}).",
        details=details,
    )
