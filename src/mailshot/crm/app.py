"""The CRM's composition root: ``create_crm_app(settings)``."""

from __future__ import annotations

from fastapi import FastAPI

from mailshot.core.access import refusals as keyrefusals
from mailshot.core.settings import Settings
from mailshot.core.web import metrics
from mailshot.core.web.app import make_part_app
from mailshot.core.web.edge import BodyRule
from mailshot.crm import scopes
from mailshot.crm.api import build_router
from mailshot.crm.api.deps import scoped
from mailshot.crm.metrics import CrmCollector
from mailshot.crm.models import KeyRefusalRecord
from mailshot.crm.sync.running import RunningSnapshots
from mailshot.crm.sync.tables import units
from mailshot.crm.ui import install_pages
from mailshot.queue import QueueSignal
from mailshot.queue import install as install_wakeups


def create_crm_app(settings: Settings) -> FastAPI:
    app = make_part_app(
        title="mailshot CRM",
        description="People, lists, campaigns, mailshots and the sync queue.",
        settings=settings,
        db_url=settings.crm_db_url(),
        body_rules=[
            BodyRule(
                "/api/v1/imports/people", settings.max_upload_bytes, "MAILSHOT_MAX_UPLOAD_BYTES"
            )
        ],
    )
    keyrefusals.install(app, KeyRefusalRecord, settings.key_refusal_retention_days)
    app.state.queue_signal = QueueSignal()
    app.state.running_snapshots = RunningSnapshots(app.state.engine, app.state.sessions)
    install_wakeups(
        app.state.engine,
        app.state.sessions,
        units,
        app.state.queue_signal,
        app.state.running_snapshots.poke,
    )
    app.include_router(build_router(), prefix="/api/v1")
    metrics.install(
        app,
        "crm",
        [CrmCollector(app.state.sessions)],
        guard=scoped(scopes.METRICS, "read the metrics"),
    )
    install_pages(app, settings)
    return app
