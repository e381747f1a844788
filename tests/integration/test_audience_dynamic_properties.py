"""Property test of the audience with a dynamic list or a campaign filtered by statuses:
the snapshot includes exactly the source's members less every exclusion rule, each
excluded person carries the first reason that applies, and the per-person answer
("is this person in, and why?") agrees with the snapshot for every person, before the
sync (live rules) and after it (snapshot)."""

from __future__ import annotations

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
    CrmSetting,
    MailingList,
    Mailshot,
    MarketingCampaign,
    Person,
    SyncExclusion,
    SyncJob,
    SyncRecipient,
)
from mailshot.crm.services import membership
from mailshot.crm.services import snapshot as audience_snapshot
from mailshot.crm.services.people import email_fields
from tests.support.audience_oracle import first_reason

EMAILS = ["a@one.com", "A@One.com", "b@two.org", "c@one.com", "bad@@one.com", None]
COUNTRIES = ["GB", "gb", "FR", None]
TITLES = ["Head of Sales", "sales rep", "Engineer", None]
STATUSES = ["Invited", "Registered", "Attended"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)

person_st = st.fixed_dictionaries(
    {
        "email": st.sampled_from(EMAILS),
        "no_email": st.booleans(),
        "country": st.sampled_from(COUNTRIES),
        "job_title": st.sampled_from(TITLES),
        "day": st.integers(0, 3),
        "status": st.sampled_from([*STATUSES, None]),
    }
)
filter_st = st.fixed_dictionaries(
    {},
    optional={
        "country": st.sampled_from(["GB", ["gb", "FR"]]),
        "job_title_contains": st.sampled_from(["SALES", "eng"]),
        "created_after": st.integers(0, 3),
        "email_domain": st.sampled_from(["one.com", ["@TWO.org"]]),
    },
).filter(bool)


def _matches(person: dict[str, Any], flt: dict[str, Any]) -> bool:
    if "country" in flt:
        wanted = flt["country"] if isinstance(flt["country"], list) else [flt["country"]]
        if (person["country"] or "").lower() not in {w.lower() for w in wanted}:
            return False
    title = flt.get("job_title_contains")
    if title and title.lower() not in (person["job_title"] or "").lower():
        return False
    if "created_after" in flt and person["day"] < flt["created_after"]:
        return False
    if "email_domain" in flt:
        wanted = (
            flt["email_domain"] if isinstance(flt["email_domain"], list) else [flt["email_domain"]]
        )
        norm = email_fields(person["email"])["email_normalised"] or ""
        if not any(norm.endswith("@" + w.lower().lstrip("@")) for w in wanted):
            return False
    return True


def expected(
    people: list[dict[str, Any]], ids: list[int], in_source: list[bool]
) -> tuple[list[int], dict[int, str]]:
    included: list[int] = []
    excluded: dict[int, str] = {}
    seen: set[str] = set()
    for index in sorted(range(len(people)), key=lambda i: ids[i]):
        if not in_source[index]:
            continue
        pid = ids[index]
        reason = first_reason(
            email_fields(people[index]["email"]), seen, opted_out=people[index]["no_email"]
        )
        if reason is None:
            included.append(pid)
        else:
            excluded[pid] = reason
    return included, excluded


def _reset(s: Session) -> None:
    for model in (SyncExclusion, SyncRecipient, SyncJob, Mailshot, CampaignMember):
        s.execute(delete(model))
    for model in (MailingList, MarketingCampaign, Person, CrmSetting):
        s.execute(delete(model))


def build(
    s: Session, people: list[dict[str, Any]], source: Any, wanted: list[str]
) -> tuple[Mailshot, list[int], list[bool]]:
    _reset(s)
    rows = [
        {
            "first_name": f"F{i}",
            "last_name": "L",
            "no_email": p["no_email"],
            "country": p["country"],
            "job_title": p["job_title"],
            "created_at": BASE + timedelta(days=p["day"]),
            "updated_at": BASE,
            **email_fields(p["email"]),
        }
        for i, p in enumerate(people)
    ]
    ids = [s.execute(insert(Person).values(r).returning(Person.id)).scalar_one() for r in rows]
    if isinstance(source, dict):
        flt = dict(source)
        if "created_after" in flt:
            flt["created_after"] = (BASE + timedelta(days=flt["created_after"])).isoformat()
        ml = MailingList(name="D", kind="dynamic", filter=flt)
        s.add(ml)
        s.flush()
        ms = Mailshot(name="M", audience_source="mailing_list", mailing_list_id=ml.id)
        in_source = [_matches(p, source) for p in people]
    else:
        camp = MarketingCampaign(name="C", member_statuses=STATUSES)
        s.add(camp)
        s.flush()
        members = [
            {
                "campaign_id": camp.id,
                "person_id": pid,
                "status": p["status"],
                "created_at": BASE,
                "updated_at": BASE,
            }
            for pid, p in zip(ids, people, strict=True)
            if p["status"] is not None
        ]
        if members:
            s.execute(insert(CampaignMember), members)
        ms = Mailshot(
            name="M",
            audience_source="marketing_campaign",
            marketing_campaign_id=camp.id,
            campaign_member_statuses=wanted,
        )
        in_source = [
            p["status"] is not None and (not wanted or p["status"] in wanted) for p in people
        ]
    s.add(ms)
    s.commit()
    return ms, ids, in_source


def test_dynamic_lists_and_campaign_statuses_obey_the_rules(settings: Settings) -> None:
    sessions = make_sessionmaker(make_unpooled_engine(settings.crm_db_url()))

    @hsettings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        people=st.lists(person_st, max_size=10),
        source=st.one_of(filter_st, st.just("campaign")),
        wanted=st.lists(st.sampled_from(STATUSES), unique=True, max_size=2),
    )
    def run(people: list[dict[str, Any]], source: Any, wanted: list[str]) -> None:
        with sessions() as s:
            ms, ids, in_source = build(s, people, source, wanted)
            want_in, want_out = expected(people, ids, in_source)
            live = {pid: membership.live_reason(s, ms, s.get(Person, pid)) for pid in ids}
            job = SyncJob(mailshot_id=ms.id, chunk_size=10, state="preparing")
            s.add(job)
            s.flush()
            counts = audience_snapshot.snapshot(s, job.id, ms)
            s.execute(SyncJob.__table__.update().values(recipients_total=counts.included))
            s.commit()
            got_in = list(
                s.scalars(
                    select(SyncRecipient.person_id)
                    .where(SyncRecipient.job_id == job.id)
                    .order_by(SyncRecipient.seq)
                )
            )
            got_out = dict(
                s.execute(
                    select(SyncExclusion.person_id, SyncExclusion.reason).where(
                        SyncExclusion.job_id == job.id
                    )
                ).all()
            )
            assert got_in == want_in
            assert got_out == want_out
            for index, pid in enumerate(ids):
                want = want_out.get(pid, None if pid in want_in else "not_in_source")
                assert live[pid] == want, (index, people[index])
                answer = membership.membership(s, ms.id, pid)
                assert (answer.reason, answer.in_audience) == (want, want is None)
                assert answer.sync_job_id == job.id and answer.explanation

    run()
