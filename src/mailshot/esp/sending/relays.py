"""Each SMTP relay's back-off after 421 replies and failed connections; the relays'
settings are :mod:`mailshot.core.smtp_relays` (re-exported here).

Which relay a message takes: every relay has its own pool of ``connections``; a message
goes to the first connection, of any relay, that is free to take one (so relays share the
work in proportion to how fast they take it), and a relay that is backing off takes none
until its back-off ends.
"""

from __future__ import annotations

import random
import time

from mailshot.core.smtp_relays import RelaySettings, RelayTimeouts, Security

__all__ = ["RelayBackoff", "RelaySettings", "RelayTimeouts", "Security"]


class RelayBackoff:
    """A relay's back-off: after a 421 reply or a failed connection no new connection is
    opened to it before ``resume_at`` (monotonic clock); each failure in a row doubles the
    wait (with up to a tenth of jitter), bounded by ``backoff_max``; mail accepted resets it."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0
        self.resume_at = 0.0
        self.last_error: str | None = None

    def failed(self, error: str) -> float:
        """Note a failure; return the wait before the next connection."""
        wait = min(self.maximum, self.initial * 2.0**self.failures * (1 + random.random() / 10))
        self.failures += 1
        self.resume_at = max(self.resume_at, time.monotonic() + wait)
        self.last_error = error
        return wait

    def succeeded(self) -> None:
        self.failures = 0

    def remaining(self) -> float:
        return max(0.0, self.resume_at - time.monotonic())
