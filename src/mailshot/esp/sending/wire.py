"""The transaction half of an SMTP connection, once aiosmtplib has set it up: our own
``asyncio.Protocol`` that reads replies in order (pipelined or not) with one timer per
connection, and the message data as it goes after DATA."""

from __future__ import annotations

import asyncio
import re
from collections import deque

from mailshot.esp.sending.outcomes import Reply

_LONE_EOL = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")
MAX_REPLY_BYTES = 64 * 1024


class LostError(Exception):
    """The connection ended, or a reply did not come in time."""


def wire_data(data: bytes) -> bytes:
    """``data`` as it goes after DATA: CRLF line ends, leading dots doubled, the final
    CRLF and the terminating dot."""
    lf = data.count(b"\n")
    if lf != data.count(b"\r\n") or data.count(b"\r") != lf:
        data = _LONE_EOL.sub(b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = _LEADING_DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class Wire(asyncio.Protocol):
    """Reads replies (in order, pipelined or not) off a transport taken over from
    aiosmtplib once the session is set up. One timer per connection watches the reply
    awaited (moved on, not made anew, for each read)."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.closed: str | None = None  # why the connection ended, once it has
        self._buf = b""
        self._lines: list[str] = []
        self._replies: deque[Reply] = deque()
        self._want = 0
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        lines = (self._buf + data if self._buf else data).split(b"\n")
        self._buf = lines.pop()  # after the last line end: the start of a line, or b""
        for line in lines:
            try:
                code = int(line[:3])
            except ValueError:
                self._break(f"malformed reply from the relay: {line[:80]!r}")
                return
            text = line[4:].strip().decode("utf-8", "replace")
            if line[3:4] == b"-":
                self._lines.append(text)
                continue
            if self._lines:
                self._lines.append(text)
                text = "\n".join(self._lines)
                self._lines = []
            self._replies.append(Reply(code, text))
        if len(self._buf) > MAX_REPLY_BYTES:
            self._break("reply from the relay too long")
        elif self._waiter is not None and len(self._replies) >= self._want:
            self._wake()

    def _break(self, reason: str) -> None:
        self.closed = reason
        self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _watch(self) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return
        if self.loop.time() >= self._deadline:
            self._wake()  # read() sees the replies missing: a timeout
        else:
            self._timer = self.loop.call_at(self._deadline, self._watch)

    def eof_received(self) -> bool:
        self.closed = self.closed or "connection closed by the relay"
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = self.closed or (f"connection lost: {exc}" if exc else "connection closed")
        self._wake()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def write(self, data: bytes) -> None:
        if self.closed is not None or self.transport.is_closing():
            raise LostError(self.closed or "connection closed")
        self.transport.write(data)

    async def read(self, n: int, timeout: float) -> list[Reply]:
        """The next ``n`` replies; :class:`LostError` if the connection ends or they do not
        all come within ``timeout`` seconds."""
        replies = self._replies
        if len(replies) < n:
            if self.closed is not None:
                raise LostError(self.closed)
            loop = self.loop
            waiter = loop.create_future()
            self._waiter, self._want = waiter, n
            self._deadline = deadline = loop.time() + timeout
            timer = self._timer
            if timer is None or timer.when() > deadline:
                if timer is not None:
                    timer.cancel()
                self._timer = loop.call_at(deadline, self._watch)
            try:
                await waiter
            finally:
                self._waiter = None
            if len(replies) < n:
                raise LostError(self.closed or f"no reply from the relay in {timeout:g} s")
        if n == 1:
            return [replies.popleft()]
        return [replies.popleft() for _ in range(n)]

    def unsent(self) -> int:
        """Bytes written that are still in this process (not handed to the kernel)."""
        try:
            return self.transport.get_write_buffer_size()
        except (AttributeError, RuntimeError):
            return 0
