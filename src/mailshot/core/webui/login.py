"""Signing in to and out of a part's pages (``GET/POST /login``, ``POST /logout``): the
throttle (:mod:`mailshot.core.webui.throttle`), the password check, a new session
(:mod:`mailshot.core.webui.sessions`); integration users cannot sign in."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select, update

from mailshot.core.access.tokens import hash_password, password_needs_rehash, verify_password
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import read_only
from mailshot.core.settings import Settings
from mailshot.core.webui import sessions as web_sessions
from mailshot.core.webui import throttle
from mailshot.core.webui.auth import FormDep, page_router
from mailshot.core.webui.pages import get_part, render

log = logging.getLogger(__name__)

LOGIN_FAILED = "The email address or the password is not right."
#: What a sign-in refused for want of a password-check turn is told to wait (seconds).
BUSY_RETRY_SECONDS = 5


@dataclass(frozen=True)
class LoginConfig:
    """One part's sign-in rules (``app.state.web_login``)."""

    failure_model: Any
    policy: throttle.ThrottlePolicy
    hash_concurrency: int
    hash_wait_seconds: float

    @classmethod
    def of(cls, settings: Settings, failure_model: Any) -> LoginConfig:
        return cls(
            failure_model=failure_model,
            policy=throttle.ThrottlePolicy.of(settings),
            hash_concurrency=settings.login_hash_concurrency,
            hash_wait_seconds=settings.login_hash_wait_seconds,
        )


@dataclass(frozen=True)
class _Found:
    id: int
    email: str
    name: str
    role: str
    enabled: bool
    password_hash: str | None


@cache
def _dummy_hash() -> str:
    # Verifying against a real hash when the email is unknown keeps the timing the same.
    return hash_password(secrets.token_urlsafe(16))


def _safe_next(request: Request, target: str | None) -> str:
    home = str(request.url_for(get_part(request).home_route))
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return home
    return target


def _find(request: Request, email: str) -> _Found | None:
    model = get_part(request).user_model
    if not email:
        return None
    with read_only(request.app.state.sessions) as s:
        row = s.scalar(select(model).where(model.email == email))
        if row is None:
            return None
        return _Found(row.id, row.email, row.name, row.role, row.enabled, row.password_hash)


def _check(
    request: Request, email: str, password: str, run: throttle.HashRunner
) -> tuple[_Found | None, bool]:
    """The user of ``email`` and whether ``password`` is theirs (one argon2 verification,
    made by ``run``, whether or not the user exists); a hash with old parameters is
    replaced."""
    found = _find(request, email)
    if found is None or not found.password_hash:
        run(verify_password, password, run(_dummy_hash))
        return found, False
    if not run(verify_password, password, found.password_hash):
        return found, False
    if password_needs_rehash(found.password_hash):
        model = get_part(request).user_model
        new_hash = run(hash_password, password)
        with request.app.state.sessions() as s, s.begin():
            s.execute(
                update(model)
                .where(model.id == found.id, model.password_hash == found.password_hash)
                .values(password_hash=new_hash)
            )
    return found, True


def _throttled_answer(
    request: Request, email: str, next_url: str, refused: throttle.Throttled
) -> Response:
    now = utcnow()
    seconds = refused.seconds_left(now)
    whose = "to this account" if refused.because == "account" else "from your network address"
    error = (
        f"Too many failed sign-ins {whose}. Try again at "
        f"{refused.until.strftime('%H:%M:%S')} UTC (in {seconds} seconds)."
    )
    response = render(
        request,
        "webui/login.html",
        {"next": next_url, "error": error, "email": email},
        status_code=429,
    )
    response.headers["Retry-After"] = str(seconds)
    return response


def build_auth_router(key: str) -> APIRouter:
    """``GET/POST /login`` and ``POST /logout`` for the part ``key`` (its users, its cookie).

    Route names carry the part's key (``crm_login``, ``esp_login``...): in the embedded
    server both parts share one URL namespace, so a name must say which part it means."""
    router = page_router()

    @router.get("/login", name=f"{key}_login")
    def login_page(request: Request, next: str | None = None) -> Response:
        if web_sessions.resolve(request) is not None:
            return RedirectResponse(_safe_next(request, next), status_code=303)
        return render(request, "webui/login.html", {"next": next or "", "error": None})

    @router.post("/login", name=f"{key}_login_post")
    def login(request: Request, form: FormDep) -> Response:
        cfg: LoginConfig = request.app.state.web_login
        sessions = request.app.state.sessions
        email = str(form.get("email", "")).strip().lower()[:320]
        password = str(form.get("password", ""))
        next_url = str(form.get("next", ""))
        client_ip = request.client.host[:64] if request.client else None

        def check_throttle() -> throttle.Throttled | None:
            refused = throttle.throttled(
                sessions,
                cfg.failure_model,
                cfg.policy,
                email=email,
                client_ip=client_ip,
                now=utcnow(),
            )
            if refused is not None:
                throttle.log_throttled(key, email, client_ip, refused)
            return refused

        refused = check_throttle()
        if refused is not None:
            return _throttled_answer(request, email, next_url, refused)
        found: _Found | None = None
        ok = False
        try:
            with throttle.hash_turn(cfg.hash_concurrency, cfg.hash_wait_seconds) as run:
                refused = check_throttle()
                if refused is None:
                    found, ok = _check(request, email, password, run)
        except throttle.HashBusy:
            log.warning(
                "%s sign-in refused for %r from %s: every password check was busy",
                key.upper(),
                email,
                client_ip or "an unknown address",
                extra={"part": key, "email": email, "client_ip": client_ip, "reason": "busy"},
            )
            busy = render(
                request,
                "webui/login.html",
                {
                    "next": next_url,
                    "email": email,
                    "error": "The server is busy checking other sign-ins. Try again in "
                    f"{BUSY_RETRY_SECONDS} seconds.",
                },
                status_code=503,
            )
            busy.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
            return busy
        if refused is not None:
            return _throttled_answer(request, email, next_url, refused)
        error: str | None = None
        status = 400
        if not ok:
            reason = "unknown address" if found is None else "wrong password"
            if found is not None and not found.password_hash:
                reason = "no password"
            throttle.record_failure(
                sessions,
                cfg.failure_model,
                cfg.policy,
                part=key,
                email=email,
                client_ip=client_ip,
                reason=reason,
            )
            error = LOGIN_FAILED
        elif found is not None and found.role == "integration":
            error = (
                "Integration users act through API keys and cannot sign in to pages. "
                "Sign in with your own account."
            )
            status = 403
        elif found is not None and not found.enabled:
            error = "This account is disabled. Ask an administrator to enable it."
            status = 403
        if error is not None or found is None:
            return render(
                request,
                "webui/login.html",
                {"next": next_url, "error": error, "email": email},
                status_code=status,
            )
        throttle.forget_failures(sessions, cfg.failure_model, email)
        web_sessions.start(
            request, user_id=found.id, email=found.email, name=found.name, role=found.role
        )
        log.info(
            "%s sign-in of %r from %s",
            key.upper(),
            email,
            client_ip or "an unknown address",
            extra={"part": key, "email": email, "client_ip": client_ip},
        )
        return RedirectResponse(_safe_next(request, next_url), status_code=303)

    @router.post("/logout", name=f"{key}_logout")
    def logout(request: Request) -> Response:
        web_sessions.end(request)
        return RedirectResponse(str(request.url_for(f"{key}_login")), status_code=303)

    return router
