"""Diagnosis: why a mailshot has (not) arrived in the ESP, and whether the integration is
healthy, as a list of checks each answering pass, warn or fail with one sentence and the
fix (``GET /mailshots/{id}/diagnosis``, ``GET /diagnosis``, ``mailshot doctor``).

:mod:`.gather` reads the facts (read-only), :mod:`.checks` judges them (pure functions),
this module orders them and picks the summary: the first failing check in
:data:`SUMMARY_ORDER`, the order in which one cause hides the next (a refused key stops
the bridge, a stopped bridge leaves the queue waiting, ...).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from mailshot.contracts.states import SyncState
from mailshot.crm.diagnosis import checks, gather, mailshot_checks
from mailshot.crm.diagnosis.facts import IntegrationFacts
from mailshot.crm.diagnosis.schemas import CheckResult, Diagnosis, verdict
from mailshot.crm.sync.tables import current_time

__all__ = ["SUMMARY_ORDER", "diagnose_integration", "diagnose_mailshot", "summarise"]

SUMMARY_ORDER = (
    "name_and_fields",
    "integration_key",
    "integration_running",
    "integration_paused",
    "esp_reachable",
    "last_error",
    "audience",
    "sync_state",
    "esp_limits",
    "recent_failures",
)


def summarise(results: list[CheckResult], state_summary: str, arrived: bool = False) -> str:
    """The main reason, in one sentence: the first failure (then warning) by the order
    above; a mailshot that arrived says so first."""
    rank = {name: n for n, name in enumerate(SUMMARY_ORDER)}
    ordered = sorted(results, key=lambda c: rank.get(c.check, len(rank)))
    fails = [c for c in ordered if c.status == "fail"]
    if arrived:
        return state_summary + (f" However: {fails[0].message}" if fails else "")
    for status in ("fail", "warn"):
        for c in ordered:
            if c.status == status:
                return c.message
    return state_summary


def _integration_checks(facts: IntegrationFacts) -> list[CheckResult]:
    return [
        checks.integration_key(facts),
        checks.integration_running(facts),
        checks.integration_paused(facts),
        checks.esp_reachable(facts),
    ]


def diagnose_integration(session: Session, now: datetime | None = None) -> Diagnosis:
    at = current_time(session, now)
    facts = gather.integration_facts(session, at)
    results = [
        *_integration_checks(facts),
        checks.esp_limits(facts),
        checks.recent_failures(facts),
    ]
    healthy = "The integration is healthy: the bridge runs, both sides accept it, and the "
    healthy += "ESP is reachable and not paused."
    return Diagnosis(
        mailshot_id=None,
        verdict=verdict(results),
        summary=summarise(results, healthy),
        checked_at=at,
        checks=results,
    )


def diagnose_mailshot(session: Session, mailshot_id: int, now: datetime | None = None) -> Diagnosis:
    at = current_time(session, now)
    mf = gather.mailshot_facts(session, mailshot_id, at)
    integ = gather.integration_facts(session, at)
    results = [
        mailshot_checks.sync_state(mf),
        mailshot_checks.name_and_fields(mf),
        *_integration_checks(integ),
        mailshot_checks.last_error(mf, at),
        mailshot_checks.audience(mf.audience),
    ]
    return Diagnosis(
        mailshot_id=mf.mailshot_id,
        mailshot_name=mf.name,
        verdict=verdict(results),
        summary=summarise(
            results, mf.status.summary, arrived=mf.status.state == SyncState.SYNCHRONISED
        ),
        checked_at=at,
        checks=results,
    )
