"""The retry policy of a unit after a transient fault, as data.

At most ``max_attempts`` attempts; before each retry an exponential back-off with full
jitter (a delay drawn uniformly between 0 and ``min(cap, base * multiplier ** (attempt -
1))``), so many failing units do not retry in step; when the other side said when to come
back (``Retry-After``), that is honoured instead, within the cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 1.0
    multiplier: float = 2.0
    cap_seconds: float = 300.0

    def exhausted(self, attempts: int) -> bool:
        """Whether a unit that has used ``attempts`` attempts may not be retried."""
        return attempts >= self.max_attempts

    def ceiling(self, attempt: int) -> float:
        """The largest delay before retry number ``attempt`` (1 = the first retry)."""
        exponent = max(0, attempt - 1)
        # Bound the exponent so a large attempt count cannot overflow a float.
        return min(self.cap_seconds, self.base_seconds * self.multiplier ** min(exponent, 64))

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait before retry number ``attempt``."""
        if retry_after is not None and retry_after >= 0:
            return min(self.cap_seconds, retry_after)
        draw = (rng or random).random()
        return draw * self.ceiling(attempt)

    def next_time(
        self,
        now: datetime,
        attempt: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> datetime:
        return now + timedelta(seconds=self.delay(attempt, retry_after, rng))


DEFAULT_POLICY = RetryPolicy()
