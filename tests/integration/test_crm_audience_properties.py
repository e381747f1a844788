"""Property test of the audience rules: for any people, memberships, consent and settings,
the snapshot (and the recount) include exactly the source's members less every exclusion
rule, and every excluded person carries the first reason that applies. The expectation is
computed in plain Python from the generated data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import (
    CampaignMember,
    ComplianceRecord,
    CrmSetting,
    MailingList,
    MailingListMember,
    Mailshot,
    MarketingCampaign,
    Person,
    SyncExclusion,
    SyncJob,
    SyncRecipient,
)
from mailshot.crm.services import audience
from mailshot.crm.services import snapshot as audience_snapshot
from mailshot.crm.services.people import email_fields
from tests.support.audience_oracle import first_reason

EMAILS = [
    "a@example.com",
    "A@Example.COM",
    " b@example.com ",
    "b@example.com",
    "c@example.org",
    "bad@@example",
    "   ",
    None,
]
CONSENTS = ["in_force", "revoked", "expired", "inactive", "expires_later"]
STATUSES = ["Invited", "Registered", "Attended"]
NOW = datetime.now(UTC)


@dataclass
class Case:
    people: list[dict[str, Any]]
    #: person index -> subscribed (list) or status (campaign)
    members: dict[int, Any]
    source: str
    wanted_statuses: list[str]
    gdpr: bool
    consents: dict[int, list[str]] = field(default_factory=dict)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    n = draw(st.integers(min_value=0, max_value=14))
    people = [
        {"email": draw(st.sampled_from(EMAILS)), "no_email": draw(st.booleans())} for _ in range(n)
    ]
    source = draw(st.sampled_from(["mailing_list", "marketing_campaign"]))
    value = st.booleans() if source == "mailing_list" else st.sampled_from(STATUSES)
    chosen = draw(st.lists(st.integers(0, max(n - 1, 0)), unique=True)) if n else []
    members = {i: draw(value) for i in chosen}
    wanted = draw(st.lists(st.sampled_from(STATUSES), unique=True, max_size=2))
    consents = {i: draw(st.lists(st.sampled_from(CONSENTS), max_size=2)) for i in range(n)}
    return Case(people, members, source, wanted, draw(st.booleans()), consents)


def expected(case: Case, ids: list[int]) -> tuple[list[int], dict[int, str]]:
    """(included person ids in order, {excluded person id: reason}) by the rules, in Python."""
    included: list[int] = []
    excluded: dict[int, str] = {}
    seen_addresses: set[str] = set()
    for index in sorted(case.members, key=lambda i: ids[i]):
        value = case.members[index]
        if (
            case.source == "marketing_campaign"
            and case.wanted_statuses
            and value not in case.wanted_statuses
        ):
            continue  # not in the source at all
        person = case.people[index]
        pid = ids[index]
        reason = first_reason(
            email_fields(person["email"]),
            seen_addresses,
            unsubscribed=case.source == "mailing_list" and value is False,
            opted_out=person["no_email"],
            no_consent=case.gdpr and not {"in_force", "expires_later"} & set(case.consents[index]),
        )
        if reason is None:
            included.append(pid)
        else:
            excluded[pid] = reason
    return included, excluded


def _consent_row(pid: int, kind: str) -> dict[str, Any]:
    row: dict[str, Any] = {"person_id": pid, "basis": "consent", "active": kind != "inactive"}
    row["revoked_at"] = NOW - timedelta(days=1) if kind == "revoked" else None
    row["expires_at"] = {
        "expired": NOW - timedelta(hours=1),
        "expires_later": NOW + timedelta(days=30),
    }.get(kind)
    row["created_at"] = row["updated_at"] = NOW
    return row


def _reset(s: Session) -> None:
    for model in (
        SyncExclusion,
        SyncRecipient,
        SyncJob,
        Mailshot,
        MailingListMember,
        CampaignMember,
        ComplianceRecord,
        MailingList,
        MarketingCampaign,
        Person,
        CrmSetting,
    ):
        s.execute(delete(model))


def build(s: Session, case: Case) -> tuple[Mailshot, int, list[int]]:
    """Write the case with bulk inserts; return the mailshot, a sync job id, the person ids."""
    _reset(s)
    ids: list[int] = []
    if case.people:
        rows = [
            {
                "first_name": f"F{i}",
                "last_name": "L",
                "no_email": p["no_email"],
                "created_at": NOW,
                "updated_at": NOW,
                **email_fields(p["email"]),
            }
            for i, p in enumerate(case.people)
        ]
        # Shuffle the id order against the generation order, so "lower id" is tested.
        ids = [
            s.execute(insert(Person).values(r).returning(Person.id)).scalar_one()
            for r in rows[::-1]
        ][::-1]
    consent_rows = [_consent_row(ids[i], k) for i, kinds in case.consents.items() for k in kinds]
    if consent_rows:
        s.execute(insert(ComplianceRecord), consent_rows)
    s.add(CrmSetting(key="gdpr_mode", value="true" if case.gdpr else "false"))
    if case.source == "mailing_list":
        ml = MailingList(name="L")
        s.add(ml)
        s.flush()
        if case.members:
            s.execute(
                insert(MailingListMember),
                [
                    {
                        "list_id": ml.id,
                        "person_id": ids[i],
                        "subscribed": v,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for i, v in case.members.items()
                ],
            )
        ms = Mailshot(name="M", audience_source="mailing_list", mailing_list_id=ml.id)
    else:
        camp = MarketingCampaign(name="C", member_statuses=STATUSES)
        s.add(camp)
        s.flush()
        if case.members:
            s.execute(
                insert(CampaignMember),
                [
                    {
                        "campaign_id": camp.id,
                        "person_id": ids[i],
                        "status": v,
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                    for i, v in case.members.items()
                ],
            )
        ms = Mailshot(
            name="M",
            audience_source="marketing_campaign",
            marketing_campaign_id=camp.id,
            campaign_member_statuses=case.wanted_statuses,
        )
    s.add(ms)
    s.flush()
    job = SyncJob(mailshot_id=ms.id, chunk_size=10, state="preparing")
    s.add(job)
    s.commit()
    return ms, job.id, ids


def check(s: Session, case: Case, ms: Mailshot, job_id: int, ids: list[int]) -> None:
    want_in, want_out = expected(case, ids)
    counted = audience.recount(s, ms)
    counts = audience_snapshot.snapshot(s, job_id, ms)
    s.commit()
    recipients = s.execute(
        select(SyncRecipient.seq, SyncRecipient.person_id, SyncRecipient.email)
        .where(SyncRecipient.job_id == job_id)
        .order_by(SyncRecipient.seq)
    ).all()
    assert [r.seq for r in recipients] == list(range(len(want_in)))
    assert [r.person_id for r in recipients] == want_in
    emails = {pid: email_fields(case.people[ids.index(pid)]["email"])["email"] for pid in want_in}
    assert all(r.email == emails[r.person_id] for r in recipients)
    got_out = dict(
        s.execute(
            select(SyncExclusion.person_id, SyncExclusion.reason).where(
                SyncExclusion.job_id == job_id
            )
        ).all()
    )
    assert got_out == want_out
    by_reason = dict.fromkeys(audience.REASONS, 0)
    for reason in want_out.values():
        by_reason[reason] += 1
    assert (counts.included, counts.excluded) == (len(want_in), by_reason)
    assert (counted.included, counted.excluded) == (counts.included, counts.excluded)
    assert counts.total_source == len(want_in) + len(want_out)


def test_audience_rules_hold_for_any_data(settings: Settings) -> None:
    sessions = make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))

    @hsettings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(case=cases())
    def run(case: Case) -> None:
        with sessions() as s:
            ms, job_id, ids = build(s, case)
            check(s, case, ms, job_id, ids)

    run()
