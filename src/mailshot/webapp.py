"""Building blocks every part's FastAPI app shares: engine lifecycle and error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from mailshot import __version__
from mailshot.db import make_engine, make_sessionmaker
from mailshot.errors import install_error_handlers
from mailshot.settings import Settings


def make_part_app(*, title: str, description: str, settings: Settings, db_url: str) -> FastAPI:
    """A FastAPI app for one part, with its own engine, sessions and error handlers.

    The API lives under ``/api/v1`` (its OpenAPI document at ``/api/v1/openapi.json``,
    its docs at ``/api/v1/docs``); the part is mounted at ``/crm`` or ``/esp``.
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
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.engines = [engine]
    app.state.sessions = make_sessionmaker(engine)
    install_error_handlers(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
