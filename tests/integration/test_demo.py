"""The demo data set: what it holds, that it holds every case a sync must handle, that the
CRM's own audience rules see those cases, and that loading it twice changes nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mailshot.app import demo
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
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
from mailshot.esp.sending import merge

PEOPLE = 600


def _query(settings: Settings, stmt: Any) -> list[Any]:
    engine = make_unpooled_engine(settings.crm_db_url())
    try:
        with make_sessionmaker(engine)() as s:
            return list(s.execute(stmt).all())
    finally:
        engine.dispose()


def _count(settings: Settings, model: Any) -> int:
    return int(_query(settings, select(func.count()).select_from(model))[0][0])


def _counts(settings: Settings) -> dict[str, int]:
    models = (
        Organisation,
        Person,
        ComplianceRecord,
        MailingList,
        MailingListMember,
        MarketingCampaign,
        CampaignMember,
        Template,
        Mailshot,
    )
    return {m.__name__: _count(settings, m) for m in models}


def test_load_writes_what_it_reports(settings: Settings) -> None:
    result = demo.load(settings, people=PEOPLE)
    assert not result.skipped
    counts = _counts(settings)
    assert counts["Person"] == result.people == PEOPLE
    assert counts["Organisation"] == result.organisations > 0
    assert counts["ComplianceRecord"] == result.compliance_records
    assert counts["MailingList"] == result.mailing_lists == 2
    assert counts["MailingListMember"] == result.list_members
    assert counts["MarketingCampaign"] == 1
    assert counts["CampaignMember"] == result.campaign_members > 0
    assert counts["Template"] == result.templates == 1
    assert counts["Mailshot"] == len(result.mailshots) == 4


def test_people_cover_every_reason_to_leave_someone_out(settings: Settings) -> None:
    demo.load(settings, people=PEOPLE)
    people = _query(
        settings,
        select(
            Person.id, Person.email, Person.email_normalised, Person.email_status, Person.no_email
        ),
    )
    statuses = Counter(p.email_status for p in people)
    assert statuses["missing"] > 0 and statuses["invalid"] > 0 and statuses["ok"] > 0.8 * PEOPLE
    assert any(p.no_email for p in people)
    # Stored exactly as the People service stores an address.
    for p in people:
        assert email_fields(p.email) == {
            "email": p.email,
            "email_normalised": p.email_normalised,
            "email_status": p.email_status,
        }
    duplicates = Counter(p.email_normalised for p in people if p.email_status == "ok")
    assert any(n > 1 for n in duplicates.values())

    consented = {
        row.person_id
        for row in _query(
            settings,
            select(ComplianceRecord.person_id).where(
                ComplianceRecord.active.is_(True), ComplianceRecord.revoked_at.is_(None)
            ),
        )
    }
    assert 0 < len(consented) < PEOPLE
    unsubscribed = _query(
        settings, select(MailingListMember.person_id).where(MailingListMember.subscribed.is_(False))
    )
    assert unsubscribed


def test_mailshots_show_the_paths_of_a_sync(settings: Settings) -> None:
    demo.load(settings, people=PEOPLE)
    rows = {row[0].name: row[0] for row in _query(settings, select(Mailshot))}
    ready = rows[demo.READY_MAILSHOT]
    assert ready.status == "ready" and ready.mailing_list_id and ready.from_address
    assert ready.subject and ready.html and ready.text and ready.sync_with == "esp"
    assert len(demo.LONG_NAME_MAILSHOT) == 120
    assert rows[demo.LONG_NAME_MAILSHOT].from_address
    campaign = rows[demo.CAMPAIGN_MAILSHOT]
    assert campaign.audience_source == "marketing_campaign"
    assert campaign.campaign_member_statuses == ["Registered"]
    assert rows[demo.DRAFT_MAILSHOT].from_address is None


def test_the_crm_audience_rules_see_every_exclusion(settings: Settings, crm: TestClient) -> None:
    demo.load(settings, people=PEOPLE)
    page = crm.get("mailshots", params={"name": demo.READY_MAILSHOT}).json()
    (mailshot,) = page["items"]
    counts = crm.post(f"mailshots/{mailshot['id']}/recount")
    assert counts.status_code == 200, counts.text
    body = counts.json()
    assert body["included"] > 0.6 * PEOPLE
    for reason in (
        "unsubscribed",
        "opted_out",
        "no_email_address",
        "invalid_email",
        "duplicate_email",
    ):
        assert body["excluded"][reason] > 0, (reason, body)


def test_loading_twice_changes_nothing(settings: Settings) -> None:
    demo.load(settings, people=PEOPLE)
    before = _counts(settings)
    again = demo.load(settings, people=PEOPLE)
    assert again.skipped and again.people == 0
    assert _counts(settings) == before


def test_the_demo_message_names_the_organisation_or_reads_its_default(
    settings: Settings,
) -> None:
    demo.load(settings, people=PEOPLE)
    ready = next(
        row[0] for row in _query(settings, select(Mailshot)) if row[0].name == demo.READY_MAILSHOT
    )
    in_orgs = _query(
        settings,
        select(Person.organisation_id.is_not(None), func.count()).group_by(
            Person.organisation_id.is_not(None)
        ),
    )
    assert dict(in_orgs)[True] > 0.6 * PEOPLE and dict(in_orgs)[False] > 0
    values = {"first_name": "Ann", "unsubscribe_url": "https://u.example/x"}
    for field, source in (("text", ready.text), ("html", ready.html)):
        template = merge.compile_template(field, source)
        named = "".join(merge.chunks(template, {**values, "organisation": "Acme Ltd"}))
        assert "happened this month at Acme Ltd." in named
        unnamed = "".join(merge.chunks(template, {**values, "organisation": ""}))
        assert "happened this month at your organisation." in unnamed
