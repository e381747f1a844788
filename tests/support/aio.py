"""Run a coroutine to the end from a synchronous test, on a thread of its own.

The browser tests keep Playwright's sync API open for the whole session; its greenlet leaves
an event loop marked as running on the main thread of that xdist worker, and a plain
``asyncio.run`` there fails with "cannot be called from a running event loop". A fresh thread
has no running loop, whatever ran before it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` on a new thread; its result or its exception comes back here."""
    return in_thread(asyncio.run, coro)


def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a new thread (for code that runs an event loop of its own)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # handed back to the caller below
            box["error"] = exc

    thread = threading.Thread(target=target, name="test-asyncio", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]
