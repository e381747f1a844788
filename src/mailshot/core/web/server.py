"""How ``mailshot serve`` and the ESP's own process run uvicorn (:func:`uvicorn_options`):
keep-alive timeout, a bound on concurrency, and :class:`HeadTimeoutProtocol`, which closes
(408) a connection whose request head is not in within ``head_timeout`` seconds."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mailshot.core.errors import REQUEST_HEAD_TIMEOUT, AppError
from mailshot.core.settings import Settings


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a time limit on each request's head and on a body
    still arriving after its answer (see the module's docstring)."""

    #: Seconds a request's head may take to arrive (a subclass per setting sets it).
    head_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None

    # ---- the request head ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._stop(self._head_timer)
        self._head_timer = None
        super().on_headers_complete()

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:  # nothing else is answering
            error = AppError(REQUEST_HEAD_TIMEOUT, seconds=self.head_timeout)
            body = orjson.dumps({"error": error.as_dict()})
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
        self.transport.close()

    # ---- a body still arriving after its answer ----------------------------------------
    def on_response_complete(self) -> None:
        super().on_response_complete()
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not self.transport.is_closing():
            self._drain_timer = self.loop.call_later(self.head_timeout, self.transport.close)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        if self._drain_timer is not None:  # the body is all in: back to keeping alive
            self._stop(self._drain_timer)
            self._drain_timer = None
            if not self.transport.is_closing() and self.timeout_keep_alive_task is None:
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop(self._head_timer)
        self._stop(self._drain_timer)
        self._head_timer = self._drain_timer = None
        super().connection_lost(exc)

    @staticmethod
    def _stop(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


def protocol_class(head_timeout: float) -> type[HeadTimeoutProtocol]:
    """:class:`HeadTimeoutProtocol` with ``head_timeout`` seconds."""
    return type("MailshotHttpProtocol", (HeadTimeoutProtocol,), {"head_timeout": head_timeout})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The options of ``uvicorn.Config`` that bound slow and numerous clients."""
    return {
        "http": protocol_class(settings.http_header_timeout_seconds),
        "timeout_keep_alive": settings.http_keep_alive_seconds,
        "limit_concurrency": settings.http_max_concurrency,
    }
