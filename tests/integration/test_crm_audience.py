"""The audience snapshot and recount on a few thousand members built with bulk inserts, the
recount endpoint, and the refusals when a mailshot has no usable audience source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.errors import AppError
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

N = 3000
NOW = datetime.now(UTC)


def _email(i: int) -> str | None:
    """Every 10th has no address, every 15th an invalid one, every 7th repeats person i-1's
    address in capitals (a duplicate unless i-1 is excluded)."""
    if i % 10 == 0:
        return None
    if i % 15 == 0:
        return f"broken{i}@@example.com"
    if i % 7 == 0:
        return _email(i - 1).upper() if _email(i - 1) else f"p{i}@example.com"  # type: ignore[union-attr]
    return f"p{i}@example.com"


@pytest.fixture
def sessions(settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))


def _build(s: Session) -> tuple[int, int, int]:
    """N people; a list holding all of them (every 11th unsubscribed); a campaign holding all
    of them (status by i % 3). Return (list id, campaign id, first person id)."""
    rows = [
        {
            "first_name": f"F{i}",
            "last_name": "L",
            "no_email": i % 13 == 0,
            "created_at": NOW,
            "updated_at": NOW,
            **email_fields(_email(i)),
        }
        for i in range(1, N + 1)
    ]
    s.execute(insert(Person), rows)
    ids = list(s.scalars(select(Person.id).order_by(Person.id)))
    ml = MailingList(name="Big")
    camp = MarketingCampaign(name="C", member_statuses=["Invited", "Registered", "Attended"])
    s.add_all([ml, camp])
    s.flush()
    s.execute(
        insert(MailingListMember),
        [
            {
                "list_id": ml.id,
                "person_id": pid,
                "subscribed": i % 11 != 0,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i, pid in enumerate(ids, start=1)
        ],
    )
    statuses = ["Invited", "Registered", "Attended"]
    s.execute(
        insert(CampaignMember),
        [
            {
                "campaign_id": camp.id,
                "person_id": pid,
                "status": statuses[i % 3],
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i, pid in enumerate(ids, start=1)
        ],
    )
    s.commit()
    return ml.id, camp.id, ids[0]


def _expected(
    first_id: int,
    *,
    is_list: bool,
    in_source: set[int] | None = None,
    gdpr_consented: set[int] | None = None,
) -> tuple[list[int], dict[str, int]]:
    """(included person ids in order, excluded counts by reason) of the people ``_build``
    made; ``in_source`` (by i) defaults to all of them, ``gdpr_consented`` (by i) to no
    GDPR mode."""
    counts = dict.fromkeys(audience.REASONS, 0)
    included: list[int] = []
    seen: set[str] = set()
    for i in range(1, N + 1):
        if in_source is not None and i not in in_source:
            continue
        reason = first_reason(
            email_fields(_email(i)),
            seen,
            unsubscribed=is_list and i % 11 == 0,
            opted_out=i % 13 == 0,
            no_consent=gdpr_consented is not None and i not in gdpr_consented,
        )
        if reason is None:
            included.append(first_id + i - 1)
        else:
            counts[reason] += 1
    return included, counts


def _on_list(s: Session, list_id: int, *names: str) -> list[Mailshot]:
    """Mailshots named ``names`` drawing on the list, committed."""
    mailshots = [
        Mailshot(name=name, audience_source="mailing_list", mailing_list_id=list_id)
        for name in names
    ]
    s.add_all(mailshots)
    s.commit()
    return mailshots


def _job(s: Session, ms: Mailshot) -> int:
    job = SyncJob(mailshot_id=ms.id, chunk_size=500, state="preparing")
    s.add(job)
    s.commit()
    return job.id


def test_snapshot_of_a_list(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        list_id, _, first = _build(s)
        (ms,) = _on_list(s, list_id, "M")
        job_id = _job(s, ms)
        want_in, want_counts = _expected(first, is_list=True)
        assert all(v > 0 for k, v in want_counts.items() if k != "no_consent")

        counts = audience_snapshot.snapshot(s, job_id, ms)
        assert (counts.included, counts.excluded) == (len(want_in), want_counts)
        assert counts.total_source == N
        s.commit()
        rows = s.execute(
            select(SyncRecipient.seq, SyncRecipient.person_id)
            .where(SyncRecipient.job_id == job_id)
            .order_by(SyncRecipient.seq)
        ).all()
        assert [r.seq for r in rows] == list(range(len(want_in)))
        assert [r.person_id for r in rows] == want_in
        assert audience.recount(s, ms) == counts

        # Snapshotting the same job again replaces it rather than adding to it.
        again = audience_snapshot.snapshot(s, job_id, ms)
        s.commit()
        assert again == counts
        n_excluded = s.scalar(
            select(func.count()).select_from(SyncExclusion).where(SyncExclusion.job_id == job_id)
        )
        assert n_excluded == sum(want_counts.values())


def test_snapshot_does_not_commit(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        list_id, _, _ = _build(s)
        (ms,) = _on_list(s, list_id, "M")
        job_id = _job(s, ms)
        assert audience_snapshot.snapshot(s, job_id, ms).included > 0
        s.rollback()
        left = s.scalar(select(func.count()).select_from(SyncRecipient))
        assert left == 0


def test_campaign_statuses_and_gdpr_mode(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        _, camp_id, first = _build(s)
        # Consent in force for even i; revoked or expired records for the others.
        records = []
        for i in range(1, N + 1):
            pid = first + i - 1
            if i % 2 == 0:
                records.append(
                    {"person_id": pid, "active": True, "expires_at": NOW + timedelta(days=9)}
                )
            elif i % 3 == 0:
                records.append(
                    {"person_id": pid, "active": True, "revoked_at": NOW - timedelta(days=1)}
                )
            else:
                records.append(
                    {"person_id": pid, "active": True, "expires_at": NOW - timedelta(days=1)}
                )
        for r in records:
            r.update(basis="consent", created_at=NOW, updated_at=NOW)
        s.execute(insert(ComplianceRecord), records)
        s.add(CrmSetting(key="gdpr_mode", value="true"))
        ms = Mailshot(
            name="M",
            audience_source="marketing_campaign",
            marketing_campaign_id=camp_id,
            campaign_member_statuses=["Registered", "Attended"],
        )
        s.add(ms)
        s.commit()
        job_id = _job(s, ms)
        # statuses[i % 3]: Registered for i % 3 == 1, Attended for i % 3 == 2.
        in_source = {i for i in range(1, N + 1) if i % 3 != 0}
        consented = {i for i in range(1, N + 1) if i % 2 == 0}
        want_in, want_counts = _expected(
            first, is_list=False, in_source=in_source, gdpr_consented=consented
        )
        assert want_counts["no_consent"] > 0
        counts = audience_snapshot.snapshot(s, job_id, ms)
        assert (counts.included, counts.excluded) == (len(want_in), want_counts)
        assert counts.total_source == len(in_source)
        assert audience.recount(s, ms) == counts


def test_missing_or_deleted_source_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        no_list = Mailshot(name="M", audience_source="mailing_list")
        with pytest.raises(AppError) as caught:
            audience.recount(s, no_list)
        assert caught.value.code == "AUDIENCE_SOURCE_MISSING"
        no_campaign = Mailshot(name="M", audience_source="marketing_campaign")
        with pytest.raises(AppError) as caught:
            audience.recount(s, no_campaign)
        assert caught.value.code == "AUDIENCE_SOURCE_MISSING"
        assert "marketing campaign" in caught.value.message
        gone = Mailshot(name="M", audience_source="mailing_list", mailing_list_id=424242)
        with pytest.raises(AppError) as caught:
            audience_snapshot.snapshot(s, 1, gone)
        assert caught.value.code == "AUDIENCE_SOURCE_NOT_FOUND"
        assert caught.value.fix


def test_recount_endpoint(crm: TestClient) -> None:
    ml = crm.post("mailing-lists", json={"name": "L"}).json()
    people = [
        crm.post("people", json={"first_name": "A", "email": "a@example.com"}).json(),
        crm.post("people", json={"first_name": "B", "email": "A@EXAMPLE.com"}).json(),
        crm.post(
            "people", json={"first_name": "C", "email": "c@example.com", "no_email": True}
        ).json(),
        crm.post("people", json={"first_name": "D"}).json(),
        crm.post("people", json={"first_name": "E", "email": "e@example.com"}).json(),
    ]
    url = f"mailing-lists/{ml['id']}/members"
    crm.post(url, json={"person_ids": [p["id"] for p in people[:4]]})
    crm.post(url, json={"person_ids": [people[4]["id"]], "subscribed": False})
    ms = crm.post("mailshots", json={"name": "M", "mailing_list_id": ml["id"]}).json()

    resp = crm.post(f"mailshots/{ms['id']}/recount")
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    # A recount cannot know the ESP's suppressions, and says so.
    assert "suppressed_at_esp" in answer.pop("note")
    assert answer == {
        "included": 1,
        "excluded": {
            "unsubscribed": 1,
            "opted_out": 1,
            "no_email_address": 1,
            "invalid_email": 0,
            "no_consent": 0,
            "duplicate_email": 1,
        },
        "total_source": 5,
    }

    crm.delete(f"mailing-lists/{ml['id']}")
    orphan = crm.post(f"mailshots/{ms['id']}/recount")
    assert (orphan.status_code, orphan.json()["error"]["code"]) == (422, "AUDIENCE_SOURCE_MISSING")
    assert crm.post("mailshots/999/recount").status_code == 404
