"""The ESP's composition root: ``create_esp_app(settings)``."""

from __future__ import annotations

from fastapi import FastAPI, Request

from mailshot.core.access import refusals as keyrefusals
from mailshot.core.db.engine import make_sessionmaker, make_unchecked_writer
from mailshot.core.errors import error_response
from mailshot.core.settings import Settings
from mailshot.core.web import metrics
from mailshot.core.web.app import make_part_app
from mailshot.core.web.edge import BodyRule
from mailshot.core.web.responses import JSONBytes
from mailshot.esp import scopes
from mailshot.esp.api import build_router
from mailshot.esp.api.deps import scoped
from mailshot.esp.errors import RetryLaterError
from mailshot.esp.metrics import EspCollector
from mailshot.esp.models import EspKeyRefusal
from mailshot.esp.ui import install_pages


async def _retry_later(_request: Request, exc: Exception) -> JSONBytes:
    assert isinstance(exc, RetryLaterError)
    return error_response(exc, {"Retry-After": str(exc.retry_after)})


def create_esp_app(settings: Settings) -> FastAPI:
    app = make_part_app(
        title="mailshot ESP",
        description="Contacts, Integrated Campaigns and their audiences, the integration page.",
        settings=settings,
        db_url=settings.esp_db_url(),
        body_rules=[
            BodyRule(
                "/api/v1/integrated-campaigns/{crm_mailshot_id}/recipients",
                settings.max_chunk_bytes,
                "MAILSHOT_MAX_CHUNK_BYTES",
            )
        ],
    )
    keyrefusals.install(app, EspKeyRefusal, settings.key_refusal_retention_days)
    # Recipient chunks are written through connections that leave foreign keys unchecked
    # (on SQLite; see mailshot.core.db.engine.make_unchecked_writer and audience.write_recipients).
    chunk_writer = make_unchecked_writer(app.state.engine)
    if chunk_writer is not app.state.engine:
        app.state.engines.append(chunk_writer)
    app.state.chunk_sessions = make_sessionmaker(chunk_writer)
    app.add_exception_handler(RetryLaterError, _retry_later)
    app.include_router(build_router(), prefix="/api/v1")
    metrics.install(
        app,
        "esp",
        [EspCollector(app.state.sessions)],
        guard=scoped(scopes.METRICS, "read the metrics"),
    )
    install_pages(app, settings)
    return app
