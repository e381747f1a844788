"""Mounting a part's pages on its app: the session store's and sign-in's settings, the
static files, the shared login routes and the part's own page router."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from fastapi import APIRouter, FastAPI
from starlette.staticfiles import StaticFiles

from mailshot.core.settings import Settings
from mailshot.core.webui import secret
from mailshot.core.webui.login import LoginConfig, build_auth_router
from mailshot.core.webui.pages import UiPart
from mailshot.core.webui.sessions import SessionConfig


def part_secret(settings: Settings, key: str) -> str:
    """The key of one part's login-form tokens and signed messages, derived from the
    installation's secret, so a CRM token is worthless to the ESP and the other way round."""
    root = secret.load_or_create(settings.data_dir).encode()
    return hmac.new(root, f"mailshot-{key}-session".encode(), hashlib.sha256).hexdigest()


def install(app: FastAPI, settings: Settings, part: UiPart, pages: APIRouter) -> None:
    """Serve ``pages`` (and login/logout, and ``/static``) on ``app`` for ``part``."""
    app.state.ui_part = part
    app.state.web_sessions = SessionConfig(
        part_key=part.key,
        session_model=part.session_model,
        user_model=part.user_model,
        secret=part_secret(settings, part.key),
        lifetime=timedelta(hours=settings.web_session_hours),
        idle=timedelta(minutes=settings.web_session_idle_minutes),
        force_secure=settings.web_cookie_secure,
    )
    app.state.web_login = LoginConfig.of(settings, part.failure_model)
    static = StaticFiles(packages=[("mailshot.core.webui", "static")])
    app.mount("/static", static, name=f"{part.key}_static")
    app.include_router(build_auth_router(part.key))
    app.include_router(pages)
