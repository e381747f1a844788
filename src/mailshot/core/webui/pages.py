"""How a page is served: the part it belongs to, the route class that turns every error into
an HTML page, the security headers, and :func:`render`.

A part (the CRM or the ESP) describes itself once with a :class:`UiPart` stored in
``app.state.ui_part``; the shared login, CSRF and role checks read it from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, PackageLoader, pass_context, select_autoescape
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailshot.core.db.engine import begin_read
from mailshot.core.errors import AppError
from mailshot.core.webui.sessions import ensure_csrf as ensure_csrf  # pages import it from here
from mailshot.core.webui.sessions import flash as flash
from mailshot.core.webui.sessions import take_flashes, write_cookies

log = logging.getLogger(__name__)

#: Scripts, styles, images, frames and form targets only from this origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
#: The same, for a page that previews a mailshot's HTML in a sandboxed ``srcdoc`` frame. A
#: srcdoc document inherits its parent's policy, and email HTML is styled inline, so such a
#: page also allows inline *styles* (never scripts: the frame's sandbox and the policy both
#: forbid them).
CSP_WITH_PREVIEW = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class NavItem:
    """One entry of a part's navigation bar: a label and the name of the page route."""

    label: str
    route: str
    admin_only: bool = False


@dataclass(frozen=True)
class PageUser:
    """The signed-in person, as pages see them (loaded afresh on every request)."""

    id: int
    email: str
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """How an audit trail names this user acting through a page."""
        return f"{self.email} (web)"


ContextHook = Callable[[Request], dict[str, Any]]


@dataclass
class UiPart:
    """What the shared page plumbing needs to know about a part."""

    key: str
    title: str
    home_route: str
    user_model: Any
    #: The part's ``web_sessions`` and ``login_failures`` tables.
    session_model: Any
    failure_model: Any
    templates: Jinja2Templates
    nav: tuple[NavItem, ...]
    #: Extra context for every page of the part (for example the integration banner).
    context_hook: ContextHook | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class LoginRequired(Exception):  # noqa: N818 (a signal, not an error)
    """The page needs a signed-in user: sends the browser to the login page."""


class PageError(Exception):
    """An error shown as a page: a status, a title, a sentence and what to do."""

    def __init__(self, status: int, title: str, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.fix = fix


def forbidden(what: str) -> PageError:
    return PageError(
        403,
        "Administrators only",
        f"Only administrators can {what}. You are signed in as a marketer.",
        "Ask an administrator to do it, or to give you the administrator role.",
    )


def csrf_refused() -> PageError:
    return PageError(
        403,
        "Form refused",
        "This form was refused because it did not carry this session's security token. "
        "That happens when a form was sent from another site, or from a page opened "
        "before you signed in again.",
        "Go back, reload the page and send the form again.",
    )


def make_templates(package: str) -> Jinja2Templates:
    """Templates of ``package`` (its ``templates`` folder) on top of the shared ones."""
    env = Environment(
        loader=ChoiceLoader(
            [PackageLoader(package, "templates"), PackageLoader("mailshot.core.webui", "templates")]
        ),
        autoescape=select_autoescape(["html", "xml"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = _format_dt
    env.filters["num"] = _format_num
    env.globals["url_for"] = _path_for  # before Jinja2Templates sets its own
    return Jinja2Templates(env=env)


@pass_context
def _path_for(context: dict[str, Any], name: str, /, **path_params: Any) -> str:
    """``url_for`` of the templates: the page's path only, never built from the Host the
    browser sent (Starlette's own gives an absolute URL on that host)."""
    request: Request = context["request"]
    return request.url_for(name, **path_params).path


def _format_dt(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if hasattr(value, "strftime"):
        text: str = value.strftime("%Y-%m-%d %H:%M:%S UTC")
        return text
    return str(value)


def _format_num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)


def get_part(request: Request) -> UiPart:
    part: UiPart = request.app.state.ui_part
    return part


def db_session(request: Request) -> Iterator[Session]:
    """A database session for a page: a read transaction for GET, a write one for POST.

    Services commit what they write; closing the session at the end rolls back anything
    left over. (Closing rather than rolling back keeps the loaded rows readable, which the
    tests rely on when they look at a page's context after the request.)"""
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        if request.method in ("GET", "HEAD"):
            begin_read(session)
        yield session


DbDep = Annotated[Session, Depends(db_session)]


def secure(response: Response, *, preview: bool = False) -> Response:
    response.headers["Content-Security-Policy"] = CSP_WITH_PREVIEW if preview else CSP
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    preview: bool = False,
) -> Response:
    """Render a page of the request's part with the context every page shares."""
    part = get_part(request)
    user: PageUser | None = getattr(request.state, "page_user", None)
    ctx: dict[str, Any] = {
        "part": part,
        "user": user,
        "csrf_token": ensure_csrf(request),
        "nav": [n for n in part.nav if user is not None and (user.is_admin or not n.admin_only)],
        "flashes": take_flashes(request),
        "banner": None,
    }
    if part.context_hook is not None and user is not None:
        try:
            ctx.update(part.context_hook(request))
        except Exception:  # the banner must never take a page down
            log.exception("page context hook failed")
    ctx.update(context or {})
    response = part.templates.TemplateResponse(request, name, ctx, status_code=status_code)
    return secure(response, preview=preview)


def render_error(
    request: Request, status: int, title: str, message: str, fix: str = ""
) -> Response:
    return render(
        request,
        "webui/error.html",
        {"title": title, "status": status, "message": message, "fix": fix},
        status_code=status,
    )


def _wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json")


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = str(request.url_for(f"{get_part(request).key}_login"))
    return RedirectResponse(f"{login}?next={quote(target)}", status_code=303)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """A route whose errors become pages (or JSON for ``*.json`` routes) instead of the
    API's JSON errors: a missing login redirects to the login page, a refusal shows why."""

    def get_route_handler(self) -> Handler:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            response = await respond(request)
            write_cookies(request, response)
            return response

        async def respond(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired:
                if _wants_json(request):
                    return JSONResponse(
                        {"error": {"code": "LOGIN_REQUIRED", "message": "Sign in first."}},
                        status_code=401,
                    )
                return login_redirect(request)
            except PageError as exc:
                if _wants_json(request):
                    body = {"code": "PAGE_ERROR", "message": exc.message, "fix": exc.fix}
                    return JSONResponse({"error": body}, status_code=exc.status)
                return render_error(request, exc.status, exc.title, exc.message, exc.fix)
            except AppError as exc:
                if _wants_json(request):
                    return JSONResponse({"error": exc.as_dict()}, status_code=exc.status)
                title = "Not found" if exc.status == 404 else "That did not work"
                return render_error(request, exc.status, title, exc.message, exc.fix)
            except (HTTPException, StarletteHTTPException):
                raise
            except RequestValidationError as exc:
                fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) for e in exc.errors())
                return render_error(
                    request,
                    422,
                    "Invalid address",
                    f"This page was asked for with values it cannot use ({fields}).",
                    "Go back and follow a link from the application.",
                )
            except Exception:
                log.exception("page failed", extra={"path": request.url.path})
                message = "Something went wrong on our side; nothing was changed by this request."
                fix = "Try again; if it happens again, report it with the time of the request."
                if _wants_json(request):
                    body = {"code": "INTERNAL_ERROR", "message": message, "fix": fix}
                    return JSONResponse({"error": body}, status_code=500)
                return render_error(request, 500, "Something went wrong", message, fix)

        return handler
