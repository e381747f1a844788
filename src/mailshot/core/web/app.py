"""Building blocks every part's FastAPI app shares: engine lifecycle, error handlers, the
HTTP edge (body limits, relative redirects), the API docs page served from this install
and the OpenAPI document's bearer scheme and error answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine

from mailshot import __version__
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.errors import install_error_handlers
from mailshot.core.settings import Settings
from mailshot.core.web import edge as httpedge
from mailshot.core.web.edge import BodyRule
from mailshot.core.web.openapi import document_errors

API = "/api/v1"
#: Swagger UI's files, from the installed ``fastapi_offline`` package (no CDN).
DOCS_STATIC = f"{API}/docs/static"


def make_part_app(
    *,
    title: str,
    description: str,
    settings: Settings,
    db_url: str,
    body_rules: Sequence[BodyRule] = (),
) -> FastAPI:
    """A FastAPI app for one part, with its own engine, sessions and error handlers.

    The API lives under ``/api/v1`` (its OpenAPI document at ``/api/v1/openapi.json``,
    its docs at ``/api/v1/docs``); the part is mounted at ``/crm`` or ``/esp``. Request
    bodies are limited to ``settings.max_body_bytes``, or to the limit of a route in
    ``body_rules``.
    """
    engine: Engine = make_engine(db_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        for each in app.state.engines:  # the part may have added engines of its own
            each.dispose()

    app = FastAPI(
        title=title,
        description=description,
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.engines = [engine]
    app.state.sessions = make_sessionmaker(engine)
    app.state.body_rules = list(body_rules)
    install_error_handlers(app)
    install_edge(app, settings, body_rules)
    install_docs(app)
    document_errors(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app


def install_edge(app: FastAPI, settings: Settings, body_rules: Sequence[BodyRule]) -> None:
    """The body limits of ``settings`` (see :mod:`mailshot.core.web.edge`)."""
    httpedge.install(
        app, default=settings.max_body_bytes, setting="MAILSHOT_MAX_BODY_BYTES", rules=body_rules
    )


def install_docs(app: FastAPI) -> None:
    """``/api/v1/docs``: Swagger UI from the installed package's files, served here."""
    app.mount(
        DOCS_STATIC, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-static"
    )

    @app.get(f"{API}/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            # No validator badge: Swagger UI would fetch it from swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )
