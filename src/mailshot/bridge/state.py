"""What a worker pool's threads share: the stop and pause signals, which side refuses the
bridge's key (nothing is leased meanwhile), the last error, the counts, the units at work."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum

from mailshot.bridge.errors import BridgeError

log = logging.getLogger(__name__)

#: A refused key is logged when the refusal starts, then at most this often.
REFUSAL_LOG_EVERY = 60.0


class Side(StrEnum):
    CRM = "CRM"
    ESP = "ESP"


class UnitResult(StrEnum):
    """How a leased unit ended, as the pool counts it."""

    DONE = "done"
    RETRIED = "retried"
    FAILED = "failed"
    LOST = "lost"


def key_refused(err: BridgeError) -> bool:
    """Whether the other side refused the bridge's key (rather than the request)."""
    return err.status in (401, 403) and err.code.startswith("AUTH_")


class PoolState:
    """Shared by the lease loops, the side lane and the health loop of one pool."""

    def __init__(self, health_seconds: float) -> None:
        self.stop = threading.Event()
        #: Set while the ESP says its integration is paused: nothing is leased.
        self.paused = threading.Event()
        #: Set while a side refuses the bridge's key: nothing is leased.
        self._refused = {side: threading.Event() for side in Side}
        self._refusal_logged: dict[Side, tuple[str, float]] = {}
        self._health_seconds = health_seconds
        self._lock = threading.Lock()
        self.active = 0
        self.last_error: str | None = None
        self.counts: dict[str, int] = dict.fromkeys(UnitResult, 0)

    @property
    def refused(self) -> bool:
        return any(e.is_set() for e in self._refused.values())

    def note_refusal(self, side: Side, err: BridgeError) -> None:
        """Remember that ``side`` refuses the key; log it when it starts and once a minute."""
        self._refused[side].set()
        now = time.monotonic()
        code, at = self._refusal_logged.get(side, ("", 0.0))
        if code != err.code or now - at >= REFUSAL_LOG_EVERY:
            self._refusal_logged[side] = (err.code, now)
            log.error(
                "the %s refuses the bridge's API key: %s: %s Fix: %s Leasing is paused; "
                "trying again every %g s.",
                side,
                err.code,
                err.message,
                err.fix or "-",
                self._health_seconds,
                extra={"side": side, "code": err.code},
            )
        self.note_error(f"{side} refuses the bridge's key: {err.code}: {err.message}", False)

    def accepted(self, side: Side) -> None:
        if self._refused[side].is_set():
            log.info("the %s accepts the bridge's API key again; leasing resumes", side)
            self._refusal_logged.pop(side, None)
        self._refused[side].clear()

    def note_error(self, text: str, show: bool = True) -> None:
        """Remember the last error (both heartbeats report it); log it if ``show``."""
        with self._lock:
            self.last_error = text[:1000]
        if show:
            log.warning(text)

    def count(self, result: UnitResult) -> None:
        with self._lock:
            self.counts[result] += 1

    @contextmanager
    def working(self) -> Iterator[None]:
        """Count a unit at work for as long as the block runs."""
        with self._lock:
            self.active += 1
        try:
            yield
        finally:
            with self._lock:
                self.active -= 1

    def seen(self) -> tuple[int, str | None]:
        """The units at work and the last error, read together."""
        with self._lock:
            return self.active, self.last_error
