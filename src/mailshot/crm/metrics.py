"""The CRM's metrics, computed at scrape time with one aggregate query each: sync jobs by
state, the duration histogram of completed syncs, recipients written, and the age of the
last bridge heartbeat (see :mod:`mailshot.core.web.metrics`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, case, extract, func, select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.contracts.states import JobState
from mailshot.core.db.engine import db_now, is_sqlite, read_only
from mailshot.crm.sync.states import JOB_ACTIVE
from mailshot.crm.sync.tables import jobs, workers

#: Upper bounds of the duration histogram, in seconds.
BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


def _seconds(session: Session) -> ColumnElement[Any]:
    """Seconds from Synchronise to completed, in the database's own arithmetic."""
    if is_sqlite(session):
        days = func.julianday(jobs.c.finished_at) - func.julianday(jobs.c.requested_at)
        return days * 86400.0
    return extract("epoch", jobs.c.finished_at - jobs.c.requested_at)


class CrmCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with read_only(self.sessions) as session:
            yield from self._collect(session)

    def _collect(self, session: Session) -> Iterator[Metric]:
        by_state: dict[str, int] = {
            str(k): int(v)
            for k, v in session.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))
        }
        gauge = GaugeMetricFamily(
            "mailshot_sync_jobs", "Sync jobs by state (the queue depth).", labels=["state"]
        )
        for state in sorted({*JOB_ACTIVE, *by_state}):
            gauge.add_metric([state], float(by_state.get(state, 0)))
        yield gauge

        seconds = _seconds(session)
        row = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(seconds), 0.0),
                *[func.coalesce(func.sum(case((seconds <= b, 1), else_=0)), 0) for b in BUCKETS],
            ).where(jobs.c.state == JobState.COMPLETED, jobs.c.finished_at.is_not(None))
        ).one()
        count, total, *cumulative = row
        histogram = HistogramMetricFamily(
            "mailshot_sync_duration_seconds",
            "Completed syncs, from Synchronise to completed.",
        )
        buckets = [(str(b), float(n)) for b, n in zip(BUCKETS, cumulative, strict=True)]
        histogram.add_metric([], [*buckets, ("+Inf", float(count))], float(total or 0.0))
        yield histogram

        written = session.execute(
            select(func.coalesce(func.sum(jobs.c.recipients_written), 0))
        ).scalar_one()
        yield CounterMetricFamily(
            "mailshot_recipients_written",
            "Recipients written to the ESP by every sync.",
            value=float(written or 0),
        )

        last = session.execute(select(func.max(workers.c.last_heartbeat_at))).scalar_one()
        age = GaugeMetricFamily(
            "mailshot_integration_heartbeat_age_seconds",
            "Seconds since the last bridge heartbeat (+Inf: never).",
            labels=["part"],
        )
        value = (db_now(session) - last).total_seconds() if last is not None else float("inf")
        age.add_metric(["crm"], max(0.0, value))
        yield age
