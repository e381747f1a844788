"""Preflight: everything the CRM can tell, before queueing, that would make a sync of a
mailshot fail, checked against the ESP's own limits (as last read by the bridge).

:func:`rules` is pure: one :class:`~mailshot.core.errors.FieldProblem` per problem over a
:class:`Draft` of the mailshot, the ESP's :class:`~mailshot.crm.services.esp_limits.EspLimits`
(None while the CRM has never received them) and the state of the audience. Rules
(``FieldProblem.rule``):

==========================  ======================================================
``name_missing``            no name
``name_too_long``           longer than the ESP's ``name_max_length`` (both lengths)
``field_too_long``          subject, from name or an address longer than the ESP takes
``subject_missing``         no subject (when the ESP requires one)
``sender_missing``          no from name or no from address (when the ESP requires it)
``sender_invalid``          a from address that is not an email address
``reply_to_invalid``        a reply-to that is not an email address
``content_missing``         neither HTML nor text (when the ESP requires content)
``audience_source_missing`` no mailing list / marketing campaign, or it was deleted
``audience_empty``          nobody in the audience can be sent to
==========================  ======================================================

Without the ESP's limits the lengths are not checked (the CRM hard-codes none of them)
and :attr:`Preflight.warnings` says so; the required fields then default to what every
email needs (:data:`BASIC_REQUIRED`). :func:`run` gathers the facts for one mailshot:
the stored limits and an EXISTS query that stops at the first included person (nothing
O(audience) happens inside a Synchronise request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from email_validator import EmailNotValidError, validate_email
from pydantic import ConfigDict
from sqlalchemy import ColumnElement, Select, exists, literal, not_, or_, select
from sqlalchemy.orm import Session

from mailshot.contracts.campaign import CampaignFields
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import UTCDateTime
from mailshot.core.errors import FieldProblem
from mailshot.crm.models import (
    CampaignMember,
    ComplianceRecord,
    MailingList,
    MailingListMember,
    Mailshot,
    MarketingCampaign,
    Person,
)
from mailshot.crm.services import dynamic_lists, esp_limits
from mailshot.crm.services.compliance import gdpr_mode
from mailshot.crm.services.esp_limits import EspLimits

#: What every email needs, used while the ESP has not said what it requires.
BASIC_REQUIRED = frozenset({"name", "subject", "from_name", "from_address", "content"})

LIMITS_UNKNOWN_WARNING = (
    "The CRM has not received the ESP's limits yet (the bridge reads them when it "
    "starts), so the name and field lengths were not checked here; the ESP checks them "
    "when the sync runs."
)


class Audience(StrEnum):
    """What the cheap audience probe found."""

    HAS_PEOPLE = "has_people"
    EMPTY = "empty"
    SOURCE_MISSING = "source_missing"
    SOURCE_NOT_FOUND = "source_not_found"


class Draft(CampaignFields):
    """The fields of a mailshot the preflight reads: the campaign's and its audience's."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    audience_source: str | None
    mailing_list_id: int | None
    marketing_campaign_id: int | None

    @classmethod
    def of(cls, mailshot: Mailshot) -> Draft:
        return cls.model_validate(mailshot)

    @property
    def source_field(self) -> str:
        if self.audience_source == "marketing_campaign":
            return "marketing_campaign_id"
        return "mailing_list_id"

    @property
    def source_label(self) -> str:
        if self.audience_source == "marketing_campaign":
            return "marketing campaign"
        return "mailing list"


@dataclass
class Preflight:
    """The outcome: problems (the sync would fail) and warnings (what was not checked)."""

    mailshot_id: int
    problems: list[FieldProblem]
    warnings: list[str] = field(default_factory=list)
    limits_read_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _address_problem(value: str) -> str | None:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def _too_long(fld: str, label: str, value: str | None, limit: int | None) -> list[FieldProblem]:
    if value is None or limit is None or len(value) <= limit:
        return []
    rule = "name_too_long" if fld == "name" else "field_too_long"
    msg = f"The {label} has {len(value)} characters; the ESP accepts at most {limit}."
    return [FieldProblem(fld, rule, msg, {"length": len(value), "max_length": limit})]


def rules(draft: Draft, limits: EspLimits | None, audience: Audience | None) -> list[FieldProblem]:
    """Every reason a sync of ``draft`` would fail (pure). ``audience`` None: not probed."""
    out: list[FieldProblem] = []
    required = BASIC_REQUIRED if limits is None or limits.required is None else limits.required
    name, subject = _clean(draft.name), _clean(draft.subject)
    from_name, from_address = _clean(draft.from_name), _clean(draft.from_address)
    reply_to = _clean(draft.reply_to)
    if name is None:
        out.append(FieldProblem("name", "name_missing", "The mailshot has no name."))
    if limits is not None:
        out += _too_long("name", "name", name, limits.name_max_length)
    if subject is None and "subject" in required:
        out.append(
            FieldProblem("subject", "subject_missing", "There is no subject; the ESP needs one.")
        )
    for fld, label in (("from_name", "sender name"), ("from_address", "sender address")):
        value = from_name if fld == "from_name" else from_address
        if value is None and fld in required:
            msg = f"There is no {label} (from); the ESP needs one."
            out.append(FieldProblem(fld, "sender_missing", msg))
    if limits is not None:
        out += _too_long("subject", "subject", subject, limits.subject_max_length)
        out += _too_long("from_name", "sender name", from_name, limits.from_name_max_length)
        for fld, label, value in (
            ("from_address", "sender address", from_address),
            ("reply_to", "reply-to address", reply_to),
        ):
            out += _too_long(fld, label, value, limits.from_address_max_length)
    for fld, rule, label, value in (
        ("from_address", "sender_invalid", "sender address", from_address),
        ("reply_to", "reply_to_invalid", "reply-to address", reply_to),
    ):
        reason = _address_problem(value) if value is not None else None
        if reason is not None:
            msg = f"The {label} '{value}' is not a valid email address: {reason}"
            out.append(FieldProblem(fld, rule, msg, {"address": value}))
    has_content = _clean(draft.html) is not None or _clean(draft.text) is not None
    if not has_content and "content" in required:
        out.append(
            FieldProblem(
                "content",
                "content_missing",
                "There is no content (HTML or text); the ESP needs it.",
            )
        )
    out += _audience_problems(draft, audience)
    return out


def _audience_problems(draft: Draft, audience: Audience | None) -> list[FieldProblem]:
    label = draft.source_label
    if audience is Audience.SOURCE_MISSING:
        msg = f"The mailshot names no {label}, so it has no audience."
        return [FieldProblem(draft.source_field, "audience_source_missing", msg)]
    if audience is Audience.SOURCE_NOT_FOUND:
        source_id = (
            draft.marketing_campaign_id
            if draft.audience_source == "marketing_campaign"
            else draft.mailing_list_id
        )
        msg = f"The {label} {source_id} of the mailshot no longer exists."
        return [
            FieldProblem(
                draft.source_field, "audience_source_missing", msg, {"source_id": source_id or 0}
            )
        ]
    if audience is Audience.EMPTY:
        msg = (
            f"Nobody in the {label} can receive the mailshot: every member is unsubscribed, "
            "opted out, without a valid address or (in GDPR mode) without consent. "
            f"POST /mailshots/{draft.id}/recount shows who is left out and why."
        )
        return [FieldProblem("audience", "audience_empty", msg)]
    return []


# ---- gathering the facts -----------------------------------------------------------------
def _source(session: Session, draft: Draft) -> tuple[Select[Any] | None, Audience | None]:
    """The source's members (``person_id``, list members subscribed only), or why none."""
    if draft.audience_source == "marketing_campaign":
        campaign_id = draft.marketing_campaign_id
        if campaign_id is None:
            return None, Audience.SOURCE_MISSING
        campaign = session.get(MarketingCampaign, campaign_id)
        if campaign is None:
            return None, Audience.SOURCE_NOT_FOUND
        cm = CampaignMember.__table__
        query: Select[Any] = select(cm.c.person_id).where(cm.c.campaign_id == campaign_id)
        mailshot = session.get(Mailshot, draft.id)
        statuses = list(mailshot.campaign_member_statuses or []) if mailshot else []
        if statuses:
            query = query.where(cm.c.status.in_(statuses))
        return query, None
    if draft.audience_source != "mailing_list" or draft.mailing_list_id is None:
        return None, Audience.SOURCE_MISSING
    ml = session.get(MailingList, draft.mailing_list_id)
    if ml is None:
        return None, Audience.SOURCE_NOT_FOUND
    if ml.kind == "dynamic":
        return dynamic_lists.members_query(ml.filter), None
    lm = MailingListMember.__table__
    query = select(lm.c.person_id).where(
        lm.c.list_id == draft.mailing_list_id,
        lm.c.subscribed == True,  # noqa: E712
    )
    return query, None


def probe_audience(session: Session, draft: Draft) -> Audience:
    """Whether at least one member of the source would be included, by the rules of
    :mod:`mailshot.crm.services.audience` (duplicates aside: of people sharing an address
    the first is kept, so they never empty an audience). One EXISTS query that stops at
    the first included person."""
    query, why = _source(session, draft)
    if query is None:
        return why or Audience.SOURCE_MISSING
    src = query.subquery("src")
    p = Person.__table__
    conditions: list[ColumnElement[bool]] = [
        not_(p.c.no_email == True),  # noqa: E712
        not_(or_(p.c.email_status == "missing", p.c.email.is_(None))),
        p.c.email_status != "invalid",
    ]
    if gdpr_mode(session):
        c = ComplianceRecord.__table__
        now = literal(utcnow(), UTCDateTime())
        conditions.append(
            exists().where(
                c.c.person_id == p.c.id,
                c.c.active == True,  # noqa: E712
                c.c.revoked_at.is_(None),
                or_(c.c.expires_at.is_(None), c.c.expires_at > now),
            )
        )
    anyone = select(literal(1)).select_from(src.join(p, p.c.id == src.c.person_id))
    found = session.scalar(select(anyone.where(*conditions).exists()))
    return Audience.HAS_PEOPLE if found else Audience.EMPTY


def run(session: Session, mailshot: Mailshot, *, probe: bool = True) -> Preflight:
    """Check ``mailshot`` against the stored limits and (with ``probe``) its audience."""
    draft = Draft.of(mailshot)
    stored = esp_limits.load(session)
    limits = stored.campaign if stored is not None else None
    audience = probe_audience(session, draft) if probe else None
    warnings = [] if stored is not None else [LIMITS_UNKNOWN_WARNING]
    return Preflight(
        mailshot_id=mailshot.id,
        problems=rules(draft, limits, audience),
        warnings=warnings,
        limits_read_at=stored.read_at if stored is not None else None,
    )


def limit_warnings(session: Session) -> list[str]:
    """What a Synchronise answer says about checks it could not make."""
    return [] if esp_limits.load(session) is not None else [LIMITS_UNKNOWN_WARNING]
