"""What every HTTP request meets before routing: :class:`BodyLimit` (413
``REQUEST_TOO_LARGE`` before reading or authenticating; the outermost one counts) and
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

from mailshot.core.errors import REQUEST_TOO_LARGE, AppError, PassThrough, error_response

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
        received = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not refused:
                    refused = True
                    if not started:
                        _observe(scope, REQUEST_TOO_LARGE.code)
                        await refusal(scope, receive, send)
                    raise BodyTooLarge
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
