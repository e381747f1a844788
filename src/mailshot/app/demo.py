"""Demo data for the CRM: a believable, seeded data set that shows every path of a sync
(people left out for each reason, a name the ESP refuses, lists, a campaign, a draft),
written by :func:`load` in one transaction with bulk inserts; idempotent."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from faker import Faker
from sqlalchemy import Connection, Table, func, insert, select

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import (
    CampaignMember,
    ComplianceRecord,
    MailingList,
    MailingListMember,
    Mailshot,
    MarketingCampaign,
    Organisation,
    Person,
    Template,
)
from mailshot.crm.services.people import email_fields

__all__ = [
    "CAMPAIGN_MAILSHOT",
    "DRAFT_MAILSHOT",
    "LONG_NAME_MAILSHOT",
    "NEWSLETTER_LIST",
    "READY_MAILSHOT",
    "DemoResult",
    "load",
]

DEFAULT_SEED = 20260131
NEWSLETTER_LIST = "Demo: Newsletter subscribers"
PARTNER_LIST = "Demo: Partner briefing"
CAMPAIGN_NAME = "Demo: Spring Conference 2026"
CAMPAIGN_STATUSES = ["Invited", "Registered", "Attended", "Declined"]
TEMPLATE_NAME = "Demo: Monthly newsletter"
READY_MAILSHOT = "Demo: April newsletter"
LONG_NAME_MAILSHOT = (
    "Demo: Partner briefing - the complete spring programme for partners, resellers and "
    "friends, with agenda, venue and a map"
)
CAMPAIGN_MAILSHOT = "Demo: Conference reminder for registered guests"
DRAFT_MAILSHOT = "Demo: Summer sale (draft, no sender yet)"

_SENDER = {"from_name": "mailshot demo", "from_address": "news@example.com"}
#: Most demo people are in an organisation (``{{ organisation }}``, carried by the sync);
#: the others read the default.
_AT = '{{ organisation | default("your organisation") }}'
_HTML = (
    '<h1>Hello {{ first_name | default("there") }},</h1><p>Here is what happened this month'
    f" at {_AT}.</p><p><a href='{{{{unsubscribe_url}}}}'>Unsubscribe</a></p>"
)
_TEXT = (
    'Hello {{ first_name | default("there") }},\n\nHere is what happened this month at'
    f" {_AT}.\n\nUnsubscribe: {{{{unsubscribe_url}}}}\n"
)


@dataclass
class DemoResult:
    """What :func:`load` wrote (all zero, and ``skipped``, when the demo was there)."""

    skipped: bool = False
    organisations: int = 0
    people: int = 0
    compliance_records: int = 0
    mailing_lists: int = 0
    list_members: int = 0
    campaign_members: int = 0
    templates: int = 0
    mailshots: list[str] = field(default_factory=list)


@dataclass
class _PersonPlan:
    row: dict[str, Any]
    consent: str  # active, revoked, expired, none


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower()) or "someone"


def _plan_people(
    fake: Faker, rng: random.Random, count: int, org_ids: list[int]
) -> list[_PersonPlan]:
    """Decide every person's data, including the ones that must be left out of a sync."""
    domains = ["example.com", "example.org", "example.net"]
    plans: list[_PersonPlan] = []
    valid_emails: list[str] = []
    for i in range(count):
        first, last = fake.first_name(), fake.last_name()
        roll = rng.random()
        email: str | None
        if roll < 0.03:
            email = None  # no email address
        elif roll < 0.05:
            email = rng.choice(
                [
                    f"{_slug(first)}.{_slug(last)}@",
                    f"{first} {last}@example.com",
                    f"{_slug(first)}.{_slug(last)}.example.com",
                    f"{_slug(first)}@@{rng.choice(domains)}",
                ]
            )  # invalid
        elif roll < 0.07 and valid_emails:
            # Somebody else's address, as people type it: the second one is a duplicate.
            email = f" {rng.choice(valid_emails).upper()} "
        else:
            email = f"{_slug(first)}.{_slug(last)}.{i}@{rng.choice(domains)}"
            valid_emails.append(email)
        consent_roll = rng.random()
        consent = (
            "active"
            if consent_roll < 0.90
            else "revoked"
            if consent_roll < 0.94
            else "expired"
            if consent_roll < 0.96
            else "none"
        )
        row = {
            "first_name": first,
            "last_name": last,
            **email_fields(email),
            "organisation_id": rng.choice(org_ids) if org_ids and rng.random() < 0.8 else None,
            "country": fake.country()[:100] if rng.random() < 0.1 else "United Kingdom",
            "job_title": fake.job()[:255],
            "no_email": rng.random() < 0.04,  # opted out
        }
        plans.append(_PersonPlan(row=row, consent=consent))
    return plans


def _insert_ids(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` in one executemany and return their new ids in the same order."""
    if not rows:
        return []
    stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return [int(r) for r in conn.execute(stmt, list(rows)).scalars()]


def _already_loaded(conn: Connection) -> bool:
    table = _table(MailingList)
    found = conn.execute(
        select(func.count()).select_from(table).where(table.c.name == NEWSLETTER_LIST)
    ).scalar_one()
    return bool(found)


def _write_people(
    conn: Connection, fake: Faker, rng: random.Random, count: int, result: DemoResult
) -> list[int]:
    org_names = {fake.company() for _ in range(max(5, count // 30))}
    org_rows = [
        {"name": name[:255], "website": f"https://{_slug(name)[:40]}.example.com", "country": "UK"}
        for name in sorted(org_names)
    ]
    org_ids = _insert_ids(conn, _table(Organisation), org_rows)
    result.organisations = len(org_ids)

    plans = _plan_people(fake, rng, count, org_ids)
    person_ids = _insert_ids(conn, _table(Person), [p.row for p in plans])
    result.people = len(person_ids)

    now = utcnow()
    consent_rows: list[dict[str, Any]] = []
    for pid, plan in zip(person_ids, plans, strict=True):
        if plan.consent == "none":
            continue
        given = now - timedelta(days=rng.randint(30, 900))
        consent_rows.append(
            {
                "person_id": pid,
                "basis": "consent",
                "active": plan.consent != "revoked",
                "given_at": given,
                "expires_at": now - timedelta(days=3) if plan.consent == "expired" else None,
                "revoked_at": now - timedelta(days=10) if plan.consent == "revoked" else None,
                "source": "Demo sign-up form",
            }
        )
    if consent_rows:
        conn.execute(insert(_table(ComplianceRecord)), consent_rows)
    result.compliance_records = len(consent_rows)
    return person_ids


def _write_audiences(
    conn: Connection, rng: random.Random, person_ids: list[int], result: DemoResult
) -> tuple[int, int, int]:
    list_ids = _insert_ids(
        conn,
        _table(MailingList),
        [
            {
                "name": NEWSLETTER_LIST,
                "description": "Everyone who signed up for news.",
                "kind": "static",
            },
            {"name": PARTNER_LIST, "description": "Partners and resellers.", "kind": "static"},
        ],
    )
    newsletter_id, partner_id = list_ids
    result.mailing_lists = len(list_ids)
    members: list[dict[str, Any]] = []
    for pid in person_ids:
        if rng.random() < 0.85:
            members.append(
                {"list_id": newsletter_id, "person_id": pid, "subscribed": rng.random() >= 0.06}
            )
        if rng.random() < 0.15:
            members.append({"list_id": partner_id, "person_id": pid, "subscribed": True})
    if members:
        conn.execute(insert(_table(MailingListMember)), members)
    result.list_members = len(members)

    (campaign_id,) = _insert_ids(
        conn,
        _table(MarketingCampaign),
        [
            {
                "name": CAMPAIGN_NAME,
                "status": "Active",
                "category": "Event",
                "goals": "200 registrations",
                "member_statuses": CAMPAIGN_STATUSES,
            }
        ],
    )
    campaign_members = [
        {
            "campaign_id": campaign_id,
            "person_id": pid,
            "status": rng.choices(CAMPAIGN_STATUSES, [5, 3, 1, 1])[0],
        }
        for pid in person_ids
        if rng.random() < 0.25
    ]
    if campaign_members:
        conn.execute(insert(_table(CampaignMember)), campaign_members)
    result.campaign_members = len(campaign_members)
    return newsletter_id, partner_id, campaign_id


def _write_content(
    conn: Connection, newsletter_id: int, partner_id: int, campaign_id: int, result: DemoResult
) -> None:
    (template_id,) = _insert_ids(
        conn,
        _table(Template),
        [
            {
                "name": TEMPLATE_NAME,
                "subject": "News from us, {{first_name}}",
                "html": _HTML,
                "text": _TEXT,
            }
        ],
    )
    result.templates = 1
    common = {"template_id": template_id, "html": _HTML, "text": _TEXT, "sync_with": "esp"}
    mailshots = [
        {
            **common,
            **_SENDER,
            "name": READY_MAILSHOT,
            "description": "Ready to synchronise: try `mailshot sync` on it.",
            "subject": "Our April news",
            "audience_source": "mailing_list",
            "mailing_list_id": newsletter_id,
            "status": "ready",
        },
        {
            **common,
            **_SENDER,
            "name": LONG_NAME_MAILSHOT,
            "description": "Its name is longer than the 100 characters the ESP accepts.",
            "subject": "The spring programme",
            "audience_source": "mailing_list",
            "mailing_list_id": partner_id,
            "status": "ready",
        },
        {
            **common,
            **_SENDER,
            "name": CAMPAIGN_MAILSHOT,
            "description": "Goes to the campaign's registered members only.",
            "subject": "See you at the Spring Conference",
            "audience_source": "marketing_campaign",
            "marketing_campaign_id": campaign_id,
            "campaign_member_statuses": ["Registered"],
            "status": "ready",
        },
        {
            **common,
            "name": DRAFT_MAILSHOT,
            "description": "A draft: it has no sender yet.",
            "subject": "Summer sale",
            "audience_source": "mailing_list",
            "mailing_list_id": newsletter_id,
            "status": "draft",
        },
    ]
    defaults: dict[str, Any] = {
        "from_name": None,
        "from_address": None,
        "marketing_campaign_id": None,
        "mailing_list_id": None,
        "campaign_member_statuses": [],
    }
    _insert_ids(conn, _table(Mailshot), [{**defaults, **m} for m in mailshots])
    result.mailshots = [str(m["name"]) for m in mailshots]


def load(settings: Settings, people: int = 3000, seed: int = DEFAULT_SEED) -> DemoResult:
    """Write the demo data set into the CRM database, unless it is already there."""
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    engine = make_unpooled_engine(settings.crm_db_url())
    try:
        with engine.begin() as conn:
            if _already_loaded(conn):
                return DemoResult(skipped=True)
            result = DemoResult()
            person_ids = _write_people(conn, fake, rng, people, result)
            newsletter_id, partner_id, campaign_id = _write_audiences(conn, rng, person_ids, result)
            _write_content(conn, newsletter_id, partner_id, campaign_id, result)
            return result
    finally:
        engine.dispose()
