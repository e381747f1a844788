"""A Hypothesis state machine over the queue's services with a controlled clock: request,
lease, prepare, heartbeat, let leases expire, complete, fail (transient and permanent),
cancel and synchronise again, in any order, on both engines. After every step:

* at most one active job per mailshot;
* a unit is held by at most one lease (one open lease-log row, whose token it carries);
* chunks_done never exceeds chunks_total;
* a completed job had each of its chunks completed exactly once.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from mailshot.contracts.units import UnitPublic
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.errors import AppError
from mailshot.core.settings import Settings
from mailshot.crm.models import Mailshot, SyncJob, SyncUnit
from mailshot.crm.models.sync import SyncLeaseLog
from mailshot.crm.sync import prepare, queue, work
from mailshot.crm.sync.states import JOB_ACTIVE
from tests.support.e2e_data import add_list, add_mailshot, crm_engine

LEASE = 10.0
EXPECTED = {"SYNC_LEASE_LOST", "SYNC_JOB_ENDED", "SYNC_NO_SNAPSHOT", "SYNC_NOT_ACTIVE"}


def test_the_queue_keeps_its_invariants(settings: Settings) -> None:
    engine = crm_engine(settings)
    sizes = (3, 5, 1)
    mailshots = []
    for n in sizes:
        list_id, _ = add_list(engine, f"s{n}", n)
        mailshots.append(add_mailshot(engine, list_id, f"Stateful {n}"))
    engine.dispose()
    app_engine = make_engine(settings.crm_db_url())
    sessions = make_sessionmaker(app_engine)

    class Queue(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.s: Session = sessions()
            self.s.execute(delete(SyncJob))
            self.s.execute(update(Mailshot).values(sync_state="not_synchronised", sync_job_id=None))
            self.s.commit()
            self.now = datetime(2030, 1, 1, tzinfo=UTC)
            self.held: list[UnitPublic] = []
            self.completions: Counter[int] = Counter()

        def teardown(self) -> None:
            self.s.close()

        def _try(self, call: object) -> object:
            try:
                return call()  # type: ignore[operator]
            except AppError as err:
                self.s.rollback()
                assert err.code in EXPECTED, err
                return None

        def _pick(self, i: int) -> UnitPublic | None:
            return self.held[i % len(self.held)] if self.held else None

        @rule(m=st.sampled_from(mailshots))
        def synchronise(self, m: int) -> None:
            queue.request_sync(self.s, m, chunk_size=2, now=self.now)

        @rule(m=st.sampled_from(mailshots))
        def cancel(self, m: int) -> None:
            self._try(lambda: queue.cancel(self.s, m, now=self.now))

        @rule()
        def lease(self) -> None:
            unit = work.lease(
                self.s, worker_id="w", lease_seconds=LEASE, max_takeovers=3, now=self.now
            )
            if unit is not None:
                self.held.append(unit)

        def _work_one(self) -> None:
            """A well-behaved worker: lease, do the unit's work, complete it."""
            unit = work.lease(
                self.s, worker_id="good", lease_seconds=LEASE, max_takeovers=3, now=self.now
            )
            if unit is None:
                return
            self.held.append(unit)
            if unit.kind == "prepare":
                self._try(
                    lambda: prepare.prepare(self.s, unit.unit_id, unit.lease_token, now=self.now)
                )
            self.complete(len(self.held) - 1)

        @rule()
        def worker_step(self) -> None:
            self._work_one()

        @rule()
        def worker_steps(self) -> None:
            for _ in range(4):
                self._work_one()

        @rule(i=st.integers(0, 20))
        def do_prepare(self, i: int) -> None:
            unit = self._pick(i)
            if unit is not None and unit.kind == "prepare":
                self._try(
                    lambda: prepare.prepare(self.s, unit.unit_id, unit.lease_token, now=self.now)
                )

        @rule(i=st.integers(0, 20))
        def heartbeat(self, i: int) -> None:
            unit = self._pick(i)
            if unit is not None:
                self._try(
                    lambda: work.heartbeat(
                        self.s, unit.unit_id, unit.lease_token, lease_seconds=LEASE, now=self.now
                    )
                )

        @rule(i=st.integers(0, 20))
        def complete(self, i: int) -> None:
            unit = self._pick(i)
            if unit is None:
                return
            out = self._try(
                lambda: work.complete(
                    self.s,
                    unit.unit_id,
                    unit.lease_token,
                    esp_campaign_id="1",
                    result={},
                    now=self.now,
                )
            )
            if isinstance(out, work.UnitOutcome) and not out.repeated and unit.kind == "chunk":
                self.completions[unit.unit_id] += 1

        @rule(i=st.integers(0, 20), permanent=st.booleans())
        def fail(self, i: int, permanent: bool) -> None:
            unit = self._pick(i)
            if unit is not None:
                self._try(
                    lambda: work.fail(
                        self.s,
                        unit.unit_id,
                        unit.lease_token,
                        permanent=permanent,
                        code="HTTP_500",
                        message="boom",
                        max_attempts=3,
                        now=self.now,
                    )
                )

        @rule(seconds=st.sampled_from([1, 5, LEASE + 1, 400]))
        def time_passes(self, seconds: float) -> None:
            self.now += timedelta(seconds=seconds)

        @invariant()
        def one_active_job_per_mailshot(self) -> None:
            per = self.s.execute(
                select(SyncJob.mailshot_id, func.count())
                .where(SyncJob.state.in_(JOB_ACTIVE))
                .group_by(SyncJob.mailshot_id)
            ).all()
            self.s.rollback()
            assert all(n == 1 for _, n in per)

        @invariant()
        def one_holder_per_unit(self) -> None:
            open_leases = self.s.execute(
                select(SyncLeaseLog.unit_id, SyncLeaseLog.lease_token).where(
                    SyncLeaseLog.ended_at.is_(None)
                )
            ).all()
            leased = dict(
                self.s.execute(
                    select(SyncUnit.id, SyncUnit.lease_token).where(SyncUnit.state == "leased")
                ).all()
            )
            self.s.rollback()
            per_unit = Counter(u for u, _ in open_leases)
            assert all(n == 1 for n in per_unit.values())
            for unit_id, token in leased.items():
                assert (unit_id, token) in set(open_leases)

        @invariant()
        def chunks_counted_once(self) -> None:
            jobs = self.s.execute(
                select(SyncJob.id, SyncJob.state, SyncJob.chunks_done, SyncJob.chunks_total)
            ).all()
            for job_id, state, done, total in jobs:
                assert total is None or done <= total
                if state == "completed":
                    chunk_ids = self.s.execute(
                        select(SyncUnit.id, SyncUnit.state).where(
                            SyncUnit.job_id == job_id, SyncUnit.kind == "chunk"
                        )
                    ).all()
                    assert len(chunk_ids) == total == done
                    assert all(s == "done" for _, s in chunk_ids)
                    assert all(self.completions[u] == 1 for u, _ in chunk_ids)
            self.s.rollback()

    try:
        run_state_machine_as_test(
            Queue,
            settings=hsettings(
                max_examples=30,
                stateful_step_count=40,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            ),
        )
    finally:
        app_engine.dispose()
