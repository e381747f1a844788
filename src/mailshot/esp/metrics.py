"""The ESP's metrics, computed at scrape time: whether its integration is paused and the
age of the last bridge heartbeat it heard (see :mod:`mailshot.core.web.metrics`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.db.engine import db_now, read_only
from mailshot.esp.models import IntegrationState, IntegrationWorker


class EspCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with read_only(self.sessions) as session:
            paused = session.scalar(select(IntegrationState.paused).limit(1))
            last = session.scalar(select(func.max(IntegrationWorker.last_heartbeat_at)))
            now = db_now(session)
        yield GaugeMetricFamily(
            "mailshot_integration_paused",
            "1 while the ESP's integration is paused.",
            value=1.0 if paused else 0.0,
        )
        age = GaugeMetricFamily(
            "mailshot_integration_heartbeat_age_seconds",
            "Seconds since the last bridge heartbeat (+Inf: never).",
            labels=["part"],
        )
        age.add_metric(["esp"], max(0.0, (now - last).total_seconds()) if last else float("inf"))
        yield age
