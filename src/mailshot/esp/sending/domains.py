"""Destination domains (the part of a recipient's address after the last ``@``): how many
messages are in flight to each through each relay (at most the relay's ``max_per_domain``),
and each domain's back-off after a 4.7.x reply (the receiver limiting us), which holds for
every relay of the engine: while it lasts, messages to that domain are not attempted and
come back ``deferred`` with the time left as ``retry_after``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass(frozen=True, slots=True)
class DomainPolicy:
    """Back-off of a destination domain after a 4.7.x reply: ``backoff_initial`` seconds,
    doubled for each one in a row up to ``backoff_max``; a message accepted for the domain
    resets the count (not a back-off under way)."""

    backoff_initial: float = 60.0
    backoff_max: float = 1800.0


class _Backoff:
    __slots__ = ("failures", "reason", "resume_at")

    def __init__(self) -> None:
        self.failures = 0
        self.resume_at = 0.0
        self.reason = ""


class Domains:
    """In-flight counts per (relay, domain) and back-off per domain, for one engine."""

    def __init__(self, policy: DomainPolicy | None = None) -> None:
        self.policy = policy or DomainPolicy()
        self._in_flight: dict[tuple[str, str], int] = {}
        self._backoff: dict[str, _Backoff] = {}

    def may_take(self, relay: str, domain: str, limit: int) -> bool:
        return self._in_flight.get((relay, domain), 0) < limit

    def take(self, relay: str, domain: str) -> None:
        key = (relay, domain)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1

    def release(self, relay: str, domain: str) -> None:
        key = (relay, domain)
        left = self._in_flight[key] - 1
        if left:
            self._in_flight[key] = left
        else:
            del self._in_flight[key]

    def in_flight(self, relay: str, domain: str) -> int:
        return self._in_flight.get((relay, domain), 0)

    def backing_off(self, domain: str) -> tuple[float, str] | None:
        """(seconds left, the reply that started it) while ``domain`` backs off."""
        if not self._backoff:
            return None
        state = self._backoff.get(domain)
        if state is None:
            return None
        left = state.resume_at - time.monotonic()
        return (left, state.reason) if left > 0 else None

    def rate_limited(self, domain: str, reason: str) -> float:
        """Note a 4.7.x reply for ``domain``; return the back-off (seconds)."""
        state = self._backoff.setdefault(domain, _Backoff())
        if state.resume_at > time.monotonic():
            return state.resume_at - time.monotonic()  # one back-off per burst of replies
        p = self.policy
        wait = min(p.backoff_max, p.backoff_initial * 2.0**state.failures)
        wait = min(p.backoff_max, wait * (1 + random.random() / 10))
        state.failures += 1
        state.resume_at = time.monotonic() + wait
        state.reason = reason
        return wait

    def accepted(self, domain: str) -> None:
        if self._backoff:
            state = self._backoff.get(domain)
            if state is not None and state.resume_at <= time.monotonic():
                del self._backoff[domain]
