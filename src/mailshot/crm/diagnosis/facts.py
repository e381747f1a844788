"""The facts the checks judge, gathered once per diagnosis (:mod:`.gather`) and handed to
the pure checks (:mod:`.checks`) as plain values: no session, no clock of their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailshot.core.errors import FieldProblem
from mailshot.crm.sync.schemas import IntegrationPublic, SyncStatus


@dataclass(frozen=True)
class KeyFacts:
    """One API key of an integration user (never its secret)."""

    id: int
    name: str
    prefix: str
    enabled: bool
    valid_from: datetime | None
    until: datetime | None
    user_email: str
    user_enabled: bool
    last_used_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class RefusalFacts:
    """One refused request that was (or looks like) the bridge's."""

    at: datetime
    key_prefix: str | None
    reason: str
    path: str | None


@dataclass(frozen=True)
class RateSample:
    """A completed sync: recipients written between its chunks' start and its end."""

    recipients: int
    seconds: float


@dataclass
class AudienceFacts:
    """Who is in the audience and who was left out, by reason (from the sync's snapshot,
    or counted now when there is none); ``error`` when it cannot be read."""

    included: int | None = None
    excluded: dict[str, int] = field(default_factory=dict)
    from_snapshot: bool = False
    error_code: str | None = None
    error_message: str = ""
    error_fix: str = ""


@dataclass
class IntegrationFacts:
    now: datetime
    keys: list[KeyFacts]
    refusals: list[RefusalFacts]
    view: IntegrationPublic
    limits_read_at: datetime | None
    limits_known: bool
    failed_24h: int = 0
    latest_failure: dict[str, str] | None = None
    active_jobs: int = 0


@dataclass
class MailshotFacts:
    mailshot_id: int
    name: str
    status: SyncStatus
    problems: list[FieldProblem]
    warnings: list[str]
    audience: AudienceFacts
    #: Recipients still to write by the active syncs served before this one.
    ahead_remaining: int = 0
    #: Active syncs ahead whose size is not known yet (not prepared).
    ahead_unsized: int = 0
    rate_samples: list[RateSample] = field(default_factory=list)
