"""What every HTTP request meets before routing: :class:`BodyLimit` (413
``REQUEST_TOO_LARGE`` before reading or authenticating; the outermost one counts; and 422
``TEXT_HAS_NUL`` for a NUL in the path, query, a JSON body or a form) and
:class:`RelativeRedirects` (a redirect never carries the request's Host header)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailshot.core.errors import (
    REQUEST_TOO_LARGE,
    TEXT_HAS_NUL,
    AppError,
    PassThrough,
    error_response,
)

#: Set in the scope by the outermost :class:`BodyLimit`: the ones inside let the request by.
_LIMITED = "mailshot.body_limited"


@dataclass(frozen=True)
class BodyRule:
    """A route whose bodies may be larger (or must be smaller) than the default.

    ``path`` is the route's path as declared, ``{name}`` for a path parameter
    (``/api/v1/integrated-campaigns/{crm_mailshot_id}/recipients``); ``setting`` names the
    setting that sets ``limit``, for the error's fix."""

    path: str
    limit: int
    setting: str

    def under(self, prefix: str) -> BodyRule:
        """The same rule for the part mounted at ``prefix`` (``/crm``)."""
        return BodyRule(prefix + self.path, self.limit, self.setting)


class BodyTooLarge(PassThrough):
    """Raised to the app reading a body past its limit, once the 413 has been sent."""


class BodyRefused(BodyTooLarge):
    """Raised to the app reading a body that holds a NUL, once the 422 has been sent."""


class NulScanner:
    """Finds a NUL in a body as it streams: ``\\u0000`` in JSON (an escape, that is after an
    odd run of backslashes), ``%00`` in a form, across chunk boundaries."""

    def __init__(self, marker: bytes, *, escaped: bool) -> None:
        self.marker = marker
        self.escaped = escaped
        self.carry = b""

    def feed(self, chunk: bytes) -> bool:
        data = self.carry + chunk
        keep = len(self.marker) - 1
        at = data.find(self.marker)
        while at != -1:
            if not self.escaped:
                return True
            run = 0
            while at - run - 1 >= 0 and data[at - run - 1] == 0x5C:  # backslashes before u
                run += 1
            if run % 2 == 1:
                return True
            at = data.find(self.marker, at + 1)
        # Keep what a marker split by the chunk boundary needs, with its backslash run.
        start = max(len(data) - keep, 0)
        while self.escaped and start > 0 and data[start - 1] == 0x5C:
            start -= 1
        self.carry = data[start:]
        return False


def _nul_scanner(scope: Scope) -> NulScanner | None:
    kind = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return NulScanner(b"u0000", escaped=True)
    if kind == "application/x-www-form-urlencoded":
        return NulScanner(b"%00", escaped=False)
    return None


def _nul_outside_body(scope: Scope) -> str | None:
    if "\x00" in scope.get("path", ""):
        return "the address"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return "the query"
    return None


def _size_text(limit: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if limit >= size:
            return f"{limit / size:g} {unit}"
    return f"{limit} bytes"


def _declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class BodyLimit:
    """ASGI middleware: refuse a request body over its route's limit with 413 before it is
    read (see the module's docstring). ``default`` applies where no rule matches."""

    def __init__(
        self, app: ASGIApp, *, default: int, setting: str, rules: Iterable[BodyRule] = ()
    ) -> None:
        self.app = app
        self.default = (default, setting)
        self.rules = [(compile_path(r.path)[0], r.limit, r.setting) for r in rules]

    def limit_for(self, scope: Scope) -> tuple[int, str]:
        path = _route_path(scope)
        for pattern, limit, setting in self.rules:
            if pattern.match(path):
                return limit, setting
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(_LIMITED):
            await self.app(scope, receive, send)
            return
        scope[_LIMITED] = True
        limit, setting = self.limit_for(scope)
        refusal = error_response(
            AppError(REQUEST_TOO_LARGE, limit=limit, limit_text=_size_text(limit), setting=setting)
        )
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            _observe(scope, REQUEST_TOO_LARGE.code)
            await refusal(scope, receive, send)
            return
        where = _nul_outside_body(scope)
        if where is not None:
            _observe(scope, TEXT_HAS_NUL.code)
            await error_response(AppError(TEXT_HAS_NUL, where=where))(scope, receive, send)
            return
        scanner = _nul_scanner(scope)
        received = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                body = message.get("body", b"")
                received += len(body)
                if received > limit:
                    refused = True
                    if not started:
                        _observe(scope, REQUEST_TOO_LARGE.code)
                        await refusal(scope, receive, send)
                    raise BodyTooLarge
                if scanner is not None and body and scanner.feed(body):
                    refused = True
                    if not started:
                        _observe(scope, TEXT_HAS_NUL.code)
                        nul = AppError(TEXT_HAS_NUL, where="the body")
                        await error_response(nul)(scope, receive, send)
                    raise BodyRefused
            return message

        async def answered(message: Message) -> None:
            nonlocal started
            if refused and not started:  # the 413 went out instead of this answer
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, answered)
        except Exception:
            if not refused or started:  # not ours, or the answer had begun: let it go on
                raise


def _observe(scope: Scope, code: str) -> None:
    observer = getattr(getattr(scope.get("app"), "state", None), "on_error", None)
    if observer is not None:
        observer(code)


_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class RelativeRedirects:
    """ASGI middleware: a ``Location`` on the request's own scheme and Host is sent as its
    path (and query), so what the client put in Host is never sent back to it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def relative(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if any(name == b"location" for name, _ in headers):
                    message = {**message, "headers": _relative_location(scope, headers)}
            await send(message)

        await self.app(scope, receive, relative)


def _relative_location(
    scope: Scope, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    host = Headers(scope=scope).get("host", "").lower()
    out = []
    for name, value in headers:
        if name == b"location":
            text = value.decode("latin-1")
            if _ABSOLUTE.match(text):
                parts = urlsplit(text)
                if parts.scheme == scope.get("scheme", "http") and parts.netloc.lower() == host:
                    text = urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
                    value = text.encode("latin-1")
        out.append((name, value))
    return out


def install(app: Starlette, *, default: int, setting: str, rules: Iterable[BodyRule] = ()) -> None:
    """Give ``app`` the body limit and relative redirects (outside its other middleware)."""
    app.add_middleware(RelativeRedirects)
    app.add_middleware(BodyLimit, default=default, setting=setting, rules=list(rules))
