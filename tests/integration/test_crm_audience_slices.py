"""The audience snapshot written in slices (short transactions, committed between them)
gives exactly the snapshot of one transaction: same seq numbering, same exclusions, and
duplicates found across slice boundaries."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.crm.models import Mailshot, SyncExclusion, SyncRecipient
from mailshot.crm.services import audience
from tests.integration.test_crm_audience import N, _build, _expected, _job, sessions

__all__ = ["sessions"]


def _rows(s: Session, job_id: int) -> tuple[list[tuple[int, int]], list[tuple[int, str]]]:
    recipients = s.execute(
        select(SyncRecipient.seq, SyncRecipient.person_id)
        .where(SyncRecipient.job_id == job_id)
        .order_by(SyncRecipient.seq)
    ).all()
    exclusions = s.execute(
        select(SyncExclusion.person_id, SyncExclusion.reason)
        .where(SyncExclusion.job_id == job_id)
        .order_by(SyncExclusion.person_id)
    ).all()
    return [tuple(r) for r in recipients], [tuple(r) for r in exclusions]  # type: ignore[misc]


def test_sliced_snapshot_equals_the_single_transaction(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        list_id, _, first = _build(s)
        ms = Mailshot(name="M", audience_source="mailing_list", mailing_list_id=list_id)
        twin = Mailshot(name="T", audience_source="mailing_list", mailing_list_id=list_id)
        s.add_all([ms, twin])
        s.commit()
        # One active job per mailshot: the twin (same list) holds the sliced one.
        whole_job, sliced_job = _job(s, ms), _job(s, twin)
        want_in, want_counts = _expected(
            first, is_list=True, in_source=set(range(1, N + 1)), gdpr_consented=None
        )
        whole = audience.snapshot(s, whole_job, ms)
        s.commit()

        steps: list[bool] = []

        def checkpoint(write: bool) -> None:
            s.commit()
            steps.append(write)

        # 7 members per slice: every "i % 7" duplicate's first holder is in an earlier slice.
        sliced = audience.snapshot(s, sliced_job, twin, checkpoint=checkpoint, slice_members=7)
        s.commit()
        assert steps[0] is False and len(steps) >= N // 7
        assert sliced == whole
        assert (sliced.included, sliced.excluded) == (len(want_in), want_counts)
        rec_whole, exc_whole = _rows(s, whole_job)
        rec_sliced, exc_sliced = _rows(s, sliced_job)
        assert rec_sliced == rec_whole
        assert [pid for _, pid in rec_sliced] == want_in
        assert [seq for seq, _ in rec_sliced] == list(range(len(want_in)))
        assert exc_sliced == exc_whole

        # A redo (a takeover) starts from scratch and ends with the same snapshot.
        again = audience.snapshot(s, sliced_job, twin, checkpoint=checkpoint, slice_members=500)
        s.commit()
        assert again == whole
        assert _rows(s, sliced_job) == (rec_whole, exc_whole)
