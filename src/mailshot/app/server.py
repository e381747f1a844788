"""The embedded default: one ASGI app hosting the CRM at ``/crm`` and the ESP at ``/esp``.

Each part can also be served alone (``create_crm_app`` / ``create_esp_app``); the bridge
always reaches them over HTTP, even when they share this process.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Header, Request
from fastapi.responses import RedirectResponse, Response

from mailshot import __version__
from mailshot.core.errors import AppError, error_response, install_error_handlers
from mailshot.core.settings import Settings
from mailshot.core.web import metrics
from mailshot.core.web.app import install_edge
from mailshot.core.web.deps import authenticate_in
from mailshot.crm.app import create_crm_app
from mailshot.crm.scopes import METRICS
from mailshot.crm.services import api_keys as crm_keys
from mailshot.esp.app import create_esp_app
from mailshot.esp.services import access as esp_keys


def create_app(settings: Settings) -> FastAPI:
    crm = create_crm_app(settings)
    esp = create_esp_app(settings)

    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with crm.router.lifespan_context(crm), esp.router.lifespan_context(esp):
            yield

    app = FastAPI(title="mailshot", version=__version__, lifespan=lifespan, docs_url=None)
    app.state.settings = settings
    app.state.crm = crm
    app.state.esp = esp

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/crm/")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    parts = [crm.state.metrics, esp.state.metrics]
    parts_by_name = [("crm", crm), ("esp", esp)]

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Response:
        """Prometheus metrics of both parts (see :mod:`mailshot.core.web.metrics`), for a key of
        either part with the scope ``metrics``: an ESP key (``msesp_``) is checked by the
        ESP, any other by the CRM (which records a refused one)."""
        token = (authorization or "").partition(" ")[2].strip()
        esp_key = token.startswith(f"{esp_keys.PRODUCT_PREFIX}_")
        part, store = (esp, esp_keys.STORE) if esp_key else (crm, crm_keys.STORE)
        try:
            caller = authenticate_in(part, store, request, authorization)
            caller.require(METRICS, "read the metrics")
        except AppError as exc:
            part.state.on_error(exc.code)
            headers = {"WWW-Authenticate": 'Bearer realm="mailshot"'} if exc.status == 401 else None
            return error_response(exc, headers)
        return metrics.metrics_response(parts)

    app.mount("/crm", crm)
    app.mount("/esp", esp)
    install_error_handlers(app)
    rules = [r.under(f"/{name}") for name, part in parts_by_name for r in part.state.body_rules]
    install_edge(app, settings, rules)
    return app
