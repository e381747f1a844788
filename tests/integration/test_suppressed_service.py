"""The CRM's record of people the ESP suppresses (``crm/sync/suppressed.py``): only the
holder of a finalize unit's lease may record, recording twice records once, the person
stays in the snapshot, and the job completes with counts that subtract them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailshot.contracts.units import UnitPublic
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.crm.models import Mailshot, SyncExclusion, SyncJob, SyncRecipient
from mailshot.crm.services import membership
from mailshot.crm.sync import prepare, queue, suppressed, work
from tests.support.e2e_data import add_list, add_mailshot, crm_engine

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    engine = make_engine(settings.crm_db_url())
    with make_sessionmaker(engine)() as s:
        yield s
    engine.dispose()


def _lease(s: Session) -> UnitPublic:
    unit = work.lease(s, worker_id="w", lease_seconds=30, max_takeovers=5, now=T0)
    assert unit is not None
    return unit


def _code(call: object) -> str:
    assert callable(call)
    with pytest.raises(AppError) as err:
        call()
    return err.value.code


def _prepared(session: Session, settings: Settings, tag: str, n: int, name: str) -> tuple[int, int]:
    """A mailshot on a new list of ``n`` people whose sync (chunks of ``n``) is prepared:
    its snapshot taken and its ESP campaign made. Answer the mailshot id and the job id."""
    engine = crm_engine(settings)
    list_id, _ = add_list(engine, tag, n)
    mailshot_id = add_mailshot(engine, list_id, name)
    engine.dispose()
    queue.request_sync(session, mailshot_id, chunk_size=n, now=T0)
    prep = _lease(session)
    prepare.prepare(session, prep.unit_id, prep.lease_token, now=T0)
    work.complete(session, prep.unit_id, prep.lease_token, esp_campaign_id="9", now=T0)
    return mailshot_id, prep.job_id


def test_only_the_finalize_lease_holder_records_and_twice_records_once(
    session: Session, settings: Settings
) -> None:
    mailshot_id, job_id = _prepared(session, settings, "sv", 5, "Suppressed service")
    people = list(
        session.scalars(
            select(SyncRecipient.person_id)
            .where(SyncRecipient.job_id == job_id)
            .order_by(SyncRecipient.seq)
        )
    )
    pair = [(people[0], "unsubscribed"), (people[3], "bounced")]

    chunk = _lease(session)
    assert chunk.kind == "chunk"
    wrong = _code(
        lambda: suppressed.record_suppressed(session, chunk.unit_id, chunk.lease_token, pair)
    )
    assert wrong == "SYNC_WRONG_UNIT_KIND"
    work.complete(session, chunk.unit_id, chunk.lease_token, recipients_written=5, now=T0)

    fin = _lease(session)
    assert fin.kind == "finalize"
    lost = _code(lambda: suppressed.record_suppressed(session, fin.unit_id, "not-the-token", pair))
    assert lost == "SYNC_LEASE_LOST"

    def rows() -> list[tuple[int, str, str | None]]:
        q = select(SyncExclusion.person_id, SyncExclusion.reason, SyncExclusion.email).where(
            SyncExclusion.job_id == job_id
        )
        return sorted((int(p), str(r), e) for p, r, e in session.execute(q))

    assert rows() == []
    for _ in range(2):  # a retried finalize relays the same people again
        done = suppressed.record_suppressed(session, fin.unit_id, fin.lease_token, pair)
        assert (done.job_id, done.people) == (job_id, 2)
    recorded = rows()
    assert [(p, r) for p, r, _ in recorded] == [
        (people[0], "suppressed_at_esp"),
        (people[3], "suppressed_at_esp"),
    ]
    assert all(email and email.startswith("sv.") for _, _, email in recorded)
    # They stay in the snapshot: the ESP holds their address but will not send to it.
    total = session.scalar(
        select(func.count()).select_from(SyncRecipient).where(SyncRecipient.job_id == job_id)
    )
    assert total == 5
    session.rollback()

    esp = {"audience_count": 5, "suppressed_count": 2, "duplicate_count": 0}
    work.complete(session, fin.unit_id, fin.lease_token, result=esp, now=T0)
    job = session.get(SyncJob, job_id)
    mailshot = session.get(Mailshot, mailshot_id)
    assert job is not None and mailshot is not None and job.result is not None
    assert (job.result["included"], job.result["suppressed"], job.result["duplicates"]) == (3, 2, 0)
    assert job.result["counts_agree"] is True
    assert (mailshot.recipients_synced, mailshot.recipients_excluded) == (3, 2)
    answer = membership.membership(session, mailshot_id, people[3])
    assert (answer.in_audience, answer.reason) == (False, "suppressed_at_esp")
    assert membership.membership(session, mailshot_id, people[1]).in_audience
    session.rollback()

    # After completion the unit is done: nothing more can be recorded on it.
    late = _code(lambda: suppressed.record_suppressed(session, fin.unit_id, fin.lease_token, pair))
    assert late == "SYNC_JOB_ENDED"


def test_counts_that_disagree_with_the_esp_are_flagged(
    session: Session, settings: Settings
) -> None:
    _prepared(session, settings, "dg", 3, "Disagree")
    chunk = _lease(session)
    work.complete(session, chunk.unit_id, chunk.lease_token, recipients_written=3, now=T0)
    fin = _lease(session)
    # The ESP counted one suppressed address that was never relayed to the CRM.
    esp = {"audience_count": 3, "suppressed_count": 1, "duplicate_count": 0}
    work.complete(session, fin.unit_id, fin.lease_token, result=esp, now=T0)
    job = session.get(SyncJob, fin.job_id)
    assert job is not None and job.result is not None
    assert (job.result["included"], job.result["suppressed"]) == (3, 0)
    assert job.result["counts_agree"] is False
