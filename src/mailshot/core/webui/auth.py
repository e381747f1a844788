"""Who may open a page: the signed-in user (:mod:`mailshot.core.webui.sessions`), roles,
CSRF (:func:`csrf_protect`) and the router every page hangs on (:func:`page_router`).
Signing in and out: :mod:`mailshot.core.webui.login`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from mailshot.core.webui import sessions as web_sessions
from mailshot.core.webui.pages import LoginRequired, PageRoute, PageUser, csrf_refused, forbidden

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


def session_first(request: Request) -> None:
    """Look this request's session up before anything else: before a route opens a
    transaction (finding the session may write: its last use, an ended row)."""
    web_sessions.resolve(request)


async def csrf_protect(request: Request, _first: Annotated[None, Depends(session_first)]) -> None:
    """Refuse a POST whose form does not carry this browser's CSRF token."""
    if request.method != "POST":
        return
    form = await request.form()
    if not web_sessions.csrf_matches(request, form.get(CSRF_FIELD)):
        raise csrf_refused()


def page_router() -> APIRouter:
    """A router of pages: errors become pages and every POST needs its CSRF token."""
    return APIRouter(
        route_class=PageRoute, dependencies=[Depends(csrf_protect)], include_in_schema=False
    )


def page_user(request: Request) -> PageUser:
    """The signed-in user (read afresh with their session), or a redirect to the login page."""
    session = web_sessions.resolve(request)
    if session is None:
        raise LoginRequired
    user = PageUser(id=session.user_id, email=session.email, name=session.name, role=session.role)
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
