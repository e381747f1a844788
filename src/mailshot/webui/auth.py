"""Who may open a page: signing in and out, the signed-in user, roles and CSRF, and the
router every page hangs on (:func:`page_router`).

The session is a signed cookie (Starlette's ``SessionMiddleware`` over itsdangerous, keyed
by the installation's secret, HttpOnly, SameSite=Lax) holding the user's id and the
session's CSRF token. The user is read from the part's ``users`` table on every request,
so disabling a user or changing their role takes effect on their next click. Integration
users act through API keys only and cannot sign in.

Every POST must carry the session's token in the hidden ``csrf_token`` field;
:func:`csrf_protect` (a dependency of every page router) refuses it otherwise.
"""

from __future__ import annotations

import hmac
import secrets
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from mailshot.db import read_only
from mailshot.keys import hash_password, verify_password
from mailshot.webui.pages import (
    LoginRequired,
    PageRoute,
    PageUser,
    csrf_refused,
    ensure_csrf,
    forbidden,
    get_part,
    render,
)

#: How long a page session lasts without signing in again.
SESSION_MAX_AGE_SECONDS = 12 * 3600
CSRF_FIELD = "csrf_token"


async def form_data(request: Request) -> dict[str, Any]:
    """The posted form as a dict (a field sent twice keeps its last value; lists via
    :func:`form_list`)."""
    if request.method != "POST":
        return {}
    form = await request.form()
    return {k: v for k, v in form.items()}


async def form_list(request: Request) -> dict[str, list[str]]:
    """The posted form's repeated fields (checkbox groups) as lists of strings."""
    form = await request.form()
    out: dict[str, list[str]] = {}
    for k, v in form.multi_items():
        if isinstance(v, str):
            out.setdefault(k, []).append(v)
    return out


FormDep = Annotated[dict[str, Any], Depends(form_data)]
ListsDep = Annotated[dict[str, list[str]], Depends(form_list)]


async def csrf_protect(request: Request) -> None:
    """Refuse a POST whose form does not carry this session's CSRF token."""
    if request.method != "POST":
        return
    expected = request.session.get("csrf")
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if (
        not isinstance(expected, str)
        or not isinstance(sent, str)
        or not hmac.compare_digest(expected.encode(), sent.encode())
    ):
        raise csrf_refused()


def page_router() -> APIRouter:
    """A router of pages: errors become pages and every POST needs its CSRF token."""
    return APIRouter(
        route_class=PageRoute, dependencies=[Depends(csrf_protect)], include_in_schema=False
    )


def page_user(request: Request) -> PageUser:
    """The signed-in user, or a redirect to the login page."""
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        raise LoginRequired
    part = get_part(request)
    with read_only(request.app.state.sessions) as s:
        row = s.get(part.user_model, uid)
        user = (
            PageUser(id=row.id, email=row.email, name=row.name, role=row.role)
            if row is not None and row.enabled and row.role != "integration"
            else None
        )
    if user is None:
        request.session.clear()
        raise LoginRequired
    request.state.page_user = user
    return user


UserDep = Annotated[PageUser, Depends(page_user)]


def admin_only(what: str) -> Any:
    """A dependency for pages only administrators may open."""

    def check(user: UserDep) -> PageUser:
        if not user.is_admin:
            raise forbidden(what)
        return user

    return Depends(check)


@cache
def _dummy_hash() -> str:
    # Verifying against a real hash when the email is unknown keeps the timing the same.
    return hash_password(secrets.token_urlsafe(16))


def _safe_next(request: Request, target: str | None) -> str:
    home = str(request.url_for(get_part(request).home_route))
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return home
    return target


LOGIN_FAILED = "The email address or the password is not right."


def build_auth_router(key: str) -> APIRouter:
    """``GET/POST /login`` and ``POST /logout`` for the part ``key`` (its users, its cookie).

    Route names carry the part's key (``crm_login``, ``esp_login``...): in the embedded
    server both parts share one URL namespace, so a name must say which part it means."""
    router = page_router()

    @router.get("/login", name=f"{key}_login")
    def login_page(request: Request, next: str | None = None) -> Response:
        if isinstance(request.session.get("uid"), int):
            return RedirectResponse(_safe_next(request, next), status_code=303)
        return render(request, "webui/login.html", {"next": next or "", "error": None})

    @router.post("/login", name=f"{key}_login_post")
    def login(request: Request, form: FormDep) -> Response:
        part = get_part(request)
        email = str(form.get("email", "")).strip().lower()
        password = str(form.get("password", ""))
        next_url = str(form.get("next", ""))
        model = part.user_model
        with read_only(request.app.state.sessions) as s:
            row = s.scalar(select(model).where(model.email == email)) if email else None
            found = (row.id, row.role, row.enabled, row.password_hash) if row is not None else None
        error: str | None = None
        status = 400
        if found is None or not found[3]:
            verify_password(password, _dummy_hash())
            error = LOGIN_FAILED
        elif not verify_password(password, found[3]):
            error = LOGIN_FAILED
        elif found[1] == "integration":
            error = (
                "Integration users act through API keys and cannot sign in to pages. "
                "Sign in with your own account."
            )
            status = 403
        elif not found[2]:
            error = "This account is disabled. Ask an administrator to enable it."
            status = 403
        if error is not None:
            return render(
                request,
                "webui/login.html",
                {"next": next_url, "error": error, "email": email},
                status_code=status,
            )
        assert found is not None
        request.session.clear()
        request.session["uid"] = found[0]
        ensure_csrf(request)  # a new token for the new session
        return RedirectResponse(_safe_next(request, next_url), status_code=303)

    @router.post("/logout", name=f"{key}_logout")
    def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse(str(request.url_for(f"{key}_login")), status_code=303)

    return router
