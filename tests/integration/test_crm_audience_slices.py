"""The audience snapshot written in slices (short transactions, committed between them)
gives exactly the snapshot of one transaction: same seq numbering, same exclusions, and
duplicates found across slice boundaries."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.crm.models import MailingListMember, SyncExclusion, SyncRecipient
from mailshot.crm.services import snapshot as audience_snapshot
from tests.integration.test_crm_audience import N, _build, _expected, _job, _on_list, sessions

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
        ms, twin = _on_list(s, list_id, "M", "T")
        # One active job per mailshot: the twin (same list) holds the sliced one.
        whole_job, sliced_job = _job(s, ms), _job(s, twin)
        want_in, want_counts = _expected(first, is_list=True)
        whole = audience_snapshot.snapshot(s, whole_job, ms)
        s.commit()

        steps: list[bool] = []

        def checkpoint(write: bool) -> None:
            s.commit()
            steps.append(write)

        # 7 members per slice: every "i % 7" duplicate's first holder is in an earlier slice.
        sliced = audience_snapshot.snapshot(
            s, sliced_job, twin, checkpoint=checkpoint, slice_members=7
        )
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
        again = audience_snapshot.snapshot(
            s, sliced_job, twin, checkpoint=checkpoint, slice_members=500
        )
        s.commit()
        assert again == whole
        assert _rows(s, sliced_job) == (rec_whole, exc_whole)


@pytest.mark.parametrize("one_pass", [True, False], ids=["one-pass", "probe"])
def test_duplicates_are_found_by_either_strategy(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, one_pass: bool
) -> None:
    """Shared addresses found in one pass over every person's address, or by a probe per
    member (a source much smaller than ``people``), read in batches of 3: the same."""
    monkeypatch.setattr(
        audience_snapshot, "PEOPLE_PER_MEMBER_FOR_ONE_PASS", 10**9 if one_pass else 0
    )
    monkeypatch.setattr(audience_snapshot, "BATCH", 3)
    with sessions() as s:
        list_id, _, first = _build(s)
        (ms,) = _on_list(s, list_id, "M")
        job = _job(s, ms)
        want_in, want_counts = _expected(first, is_list=True)
        assert want_counts["duplicate_email"] > 0
        got = audience_snapshot.snapshot(
            s, job, ms, checkpoint=lambda _: s.commit(), slice_members=7
        )
        s.commit()
        assert (got.included, got.excluded) == (len(want_in), want_counts)
        recipients, _ = _rows(s, job)
        assert recipients == list(enumerate(want_in))


class _StoppedError(Exception):
    """The worker taking the snapshot stops here (as if killed)."""


def test_a_resumed_snapshot_goes_on_after_the_committed_slices(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audience_snapshot, "REDO_DELETE_BATCH", 100)
    with sessions() as s:
        list_id, _, _ = _build(s)
        ms, twin = _on_list(s, list_id, "M", "T")
        whole_job, job = _job(s, ms), _job(s, twin)
        whole = audience_snapshot.snapshot(s, whole_job, ms)
        s.commit()
        want = _rows(s, whole_job)

        writes = 0

        def dies_at_the_fifth_slice(write: bool) -> None:
            nonlocal writes
            s.commit()
            writes += write
            if writes == 5:
                raise _StoppedError

        with pytest.raises(_StoppedError):
            audience_snapshot.snapshot(
                s, job, twin, checkpoint=dies_at_the_fifth_slice, slice_members=7
            )
        s.rollback()
        recipients, exclusions = _rows(s, job)
        assert 0 < len(recipients) < len(want[0])
        assert recipients == want[0][: len(recipients)]  # whole slices, in order
        assert exclusions == want[1][: len(exclusions)]

        resumed = audience_snapshot.snapshot(
            s, job, twin, checkpoint=lambda _: s.commit(), slice_members=7, resume=True
        )
        s.commit()
        assert resumed == whole
        assert _rows(s, job) == want

        # A redo from scratch deletes the earlier rows 100 seqs per write transaction.
        steps: list[bool] = []

        def checkpoint(write: bool) -> None:
            s.commit()
            steps.append(write)

        redo = audience_snapshot.snapshot(s, job, twin, checkpoint=checkpoint, slice_members=5000)
        s.commit()
        assert redo == whole
        assert _rows(s, job) == want
        assert steps.count(True) >= len(want[0]) // 100


def test_a_source_is_small_up_to_its_limit_whoever_its_members_are(
    sessions: sessionmaker[Session],
) -> None:
    """``is_small_write`` (a small audience is snapshotted as ordinary work, not bulk work) counts
    the source's members, left out or not, up to the limit and no further."""
    with sessions() as s:
        list_id, _, _ = _build(s)
        ms, _ = _on_list(s, list_id, "M", "T")
        on_list = select(func.count()).where(MailingListMember.list_id == list_id)
        members = int(s.scalar(on_list) or 0)
        assert members == N  # the unsubscribed are members too: a rule leaves them out
        assert audience_snapshot.is_small_write(s, ms, members=members)
        assert not audience_snapshot.is_small_write(s, ms, members=members - 1)
