"""The error catalogue: every error has a stable code, a sentence for people and the fix
(:func:`define`, :data:`CATALOGUE`); an :class:`AppError` carries one, rendered the same
way by the API, the CLI and the pages."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailshot.core.web.responses import JSONBytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorSpec:
    """One entry of the catalogue. ``message`` and ``fix`` are ``str.format`` templates."""

    code: str
    status: int
    message: str
    fix: str = ""
    part: str = "common"

    def render(self, params: dict[str, Any]) -> tuple[str, str]:
        try:
            message = self.message.format(**params)
        except (KeyError, IndexError, ValueError):
            message = self.message
        try:
            fix = self.fix.format(**params)
        except (KeyError, IndexError, ValueError):
            fix = self.fix
        return message, fix


CATALOGUE: dict[str, ErrorSpec] = {}


def define(code: str, status: int, message: str, fix: str = "", part: str = "common") -> ErrorSpec:
    """Add an error to the catalogue (once per code) and return its spec."""
    existing = CATALOGUE.get(code)
    spec = ErrorSpec(code=code, status=status, message=message, fix=fix, part=part)
    if existing is not None and existing != spec:
        raise RuntimeError(f"error code {code} is defined twice with different texts")
    CATALOGUE[code] = spec
    return spec


@dataclass
class FieldProblem:
    """One problem with one field of a request: which field, which rule, in words."""

    field: str
    rule: str
    message: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "rule": self.rule, "message": self.message}
        if self.params:
            out["params"] = self.params
        return out


class AppError(Exception):
    """An error from the catalogue, raised by services and mapped to HTTP by the API."""

    def __init__(
        self,
        spec: ErrorSpec,
        details: list[FieldProblem] | None = None,
        **params: Any,
    ) -> None:
        self.spec = spec
        self.params = params
        self.details = details or []
        self.message, self.fix = spec.render(params)
        super().__init__(f"{spec.code}: {self.message}")

    @property
    def code(self) -> str:
        return self.spec.code

    @property
    def status(self) -> int:
        return self.spec.status

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fix:
            body["fix"] = self.fix
        if self.details:
            body["details"] = [d.as_dict() for d in self.details]
        safe = {k: v for k, v in self.params.items() if isinstance(v, str | int | float | bool)}
        if safe:
            body["params"] = safe
        return body


# ---- errors common to every part ---------------------------------------------------------
VALIDATION_FAILED = define(
    "VALIDATION_FAILED",
    422,
    "The request is not valid: {summary}",
    "Correct the fields listed in details and send it again.",
)
NOT_FOUND = define("NOT_FOUND", 404, "There is no {what} with id {id}.", "Check the id.")
ROUTE_NOT_FOUND = define(
    "ROUTE_NOT_FOUND", 404, "There is no such address: {path}.", "See the API's /docs page."
)
METHOD_NOT_ALLOWED = define(
    "METHOD_NOT_ALLOWED", 405, "This address does not accept {method}.", "See the API's /docs page."
)
INVALID_CURSOR = define(
    "INVALID_CURSOR",
    422,
    "The paging cursor is not one this API gave out.",
    "Start again without a cursor, then follow next_cursor from each page.",
)
CONFLICT = define("CONFLICT", 409, "{reason}", "")
REQUEST_TOO_LARGE = define(
    "REQUEST_TOO_LARGE",
    413,
    "The request's body is larger than this address accepts: at most {limit} bytes ({limit_text}).",
    "Send less in one request (split the file or the list into parts), or ask the "
    "administrator to raise the setting {setting}.",
)
TEXT_HAS_NUL = define(
    "TEXT_HAS_NUL",
    422,
    "The request holds the NUL character (U+0000) in {where}; no text in mailshot may hold it.",
    "Remove the NUL characters (\\u0000 in JSON, %00 in a URL or form) and send it again.",
)
REQUEST_HEAD_TIMEOUT = define(
    "REQUEST_HEAD_TIMEOUT",
    408,
    "The request's line and headers did not all arrive within {seconds:g} seconds: the "
    "connection is closed.",
    "Send the request's head at once; if the network is that slow, ask the administrator "
    "to raise MAILSHOT_HTTP_HEADER_TIMEOUT_SECONDS.",
)
INTERNAL_ERROR = define(
    "INTERNAL_ERROR",
    500,
    "Something went wrong on our side (reference {reference}).",
    "Try again; if it happens again, report the reference {reference}: the server's log "
    "has the details under it.",
)


def _problem_from_pydantic(err: dict[str, Any]) -> FieldProblem:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    rule = str(err.get("type", "invalid"))
    ctx = {
        k: v if not isinstance(v, int) or abs(v) < 2**63 else str(v)  # JSON writes 64 bits
        for k, v in (err.get("ctx") or {}).items()
        if isinstance(v, str | int | float)
    }
    return FieldProblem(
        field=".".join(loc) or "body", rule=rule, message=str(err.get("msg")), params=ctx
    )


def validation_error(problems: list[FieldProblem]) -> AppError:
    summary = "; ".join(f"{p.field}: {p.message}" for p in problems[:5])
    return AppError(VALIDATION_FAILED, details=problems, summary=summary)


def error_response(err: AppError, headers: dict[str, str] | None = None) -> JSONBytes:
    return JSONBytes({"error": err.as_dict()}, status_code=err.status, headers=headers)


def _observe(request: Request, code: str) -> None:
    """Tell the app's error observer (its metrics, if installed) which code it answered."""
    observer = getattr(request.app.state, "on_error", None)
    if observer is not None:
        observer(code)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error, catalogued or not, to the catalogue's JSON shape."""

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONBytes:
        _observe(_request, exc.code)
        headers = None
        if exc.status == 401:
            headers = {"WWW-Authenticate": 'Bearer realm="mailshot"'}
        return error_response(exc, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONBytes:
        problems = [_problem_from_pydantic(dict(e)) for e in exc.errors()]
        _observe(_request, VALIDATION_FAILED.code)
        return error_response(validation_error(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONBytes:
        _observe(
            request,
            {404: ROUTE_NOT_FOUND.code, 405: METHOD_NOT_ALLOWED.code}.get(
                exc.status_code, f"HTTP_{exc.status_code}"
            ),
        )
        if exc.status_code == 404:
            return error_response(AppError(ROUTE_NOT_FOUND, path=request.url.path))
        if exc.status_code == 405:
            return error_response(AppError(METHOD_NOT_ALLOWED, method=request.method))
        spec = ErrorSpec(f"HTTP_{exc.status_code}", exc.status_code, str(exc.detail))
        return error_response(AppError(spec))

    app.add_middleware(UnhandledErrors)


class PassThrough(Exception):  # noqa: N818 (a signal, not an error)
    """An exception that another layer answers (it has already sent the response):
    :class:`UnhandledErrors` lets it through untouched."""


class UnhandledErrors:
    """ASGI middleware: an exception no handler took becomes the catalogued 500
    (``INTERNAL_ERROR`` with a reference that is logged with the traceback), sent with
    ``Connection: close`` and not raised further, so the server does not drop the
    connection under the client. An exception after the answer has begun is logged and
    raised: the server then closes the connection, the only way to tell the client that
    the answer is cut short."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except PassThrough:
            raise
        except ClientDisconnect:
            log.info("the client went away before its request was read", extra=_where(scope))
        except Exception as exc:
            reference = uuid.uuid4().hex[:16]
            log.error(
                "unexpected error, reference %s", reference, exc_info=exc, extra=_where(scope)
            )
            observer = getattr(getattr(scope.get("app"), "state", None), "on_error", None)
            if observer is not None:
                observer(INTERNAL_ERROR.code)
            if started:
                raise
            answer = error_response(
                AppError(INTERNAL_ERROR, reference=reference), {"Connection": "close"}
            )
            await answer(scope, receive, send)


def _where(scope: Scope) -> dict[str, Any]:
    return {"path": scope.get("path"), "method": scope.get("method")}
