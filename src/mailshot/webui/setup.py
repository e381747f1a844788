"""Mounting a part's pages on its app: the session middleware, the static files, the
shared login routes and the part's own page router."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from mailshot.settings import Settings
from mailshot.webui import secret
from mailshot.webui.auth import SESSION_MAX_AGE_SECONDS, build_auth_router
from mailshot.webui.pages import UiPart


def part_secret(settings: Settings, key: str) -> str:
    """The signing key of one part's sessions, derived from the installation's secret, so a
    CRM session cookie is worthless to the ESP and the other way round."""
    root = secret.load_or_create(settings.data_dir).encode()
    return hmac.new(root, f"mailshot-{key}-session".encode(), hashlib.sha256).hexdigest()


def install(app: FastAPI, settings: Settings, part: UiPart, pages: APIRouter) -> None:
    """Serve ``pages`` (and login/logout, and ``/static``) on ``app`` for ``part``."""
    app.state.ui_part = part
    app.add_middleware(
        SessionMiddleware,
        secret_key=part_secret(settings, part.key),
        session_cookie=f"mailshot_{part.key}_session",
        max_age=SESSION_MAX_AGE_SECONDS,
        same_site="lax",
        https_only=False,
    )
    static = StaticFiles(packages=[("mailshot.webui", "static")])
    app.mount("/static", static, name=f"{part.key}_static")
    app.include_router(build_auth_router(part.key))
    app.include_router(pages)
