"""Sign-in throttling over the part's ``login_failures`` table (per address typed and per
client address, a doubling wait past the limits) and the bound on password checks running
at once (:func:`hash_turn`; 503 after ``login_hash_wait_seconds``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import read_only
from mailshot.core.settings import Settings

log = logging.getLogger(__name__)

#: The first wait once an account or an address reached its number of failures.
FIRST_DELAY = timedelta(seconds=30)
_MAX_DOUBLINGS = 16


@dataclass(frozen=True)
class ThrottlePolicy:
    account_failures: int
    address_failures: int
    window: timedelta

    @classmethod
    def of(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            account_failures=settings.login_account_failures,
            address_failures=settings.login_address_failures,
            window=timedelta(minutes=settings.login_failure_window_minutes),
        )

    def delay(self, failures: int, limit: int) -> timedelta | None:
        """How long after the latest failure the next attempt must wait, or None."""
        if failures < limit:
            return None
        doublings: int = min(failures - limit, _MAX_DOUBLINGS)
        return min(self.window, FIRST_DELAY * (1 << doublings))


@dataclass(frozen=True)
class Throttled:
    """An attempt refused until ``until``, because of the account or the client address."""

    until: datetime
    because: Literal["account", "address"]

    def seconds_left(self, now: datetime) -> int:
        return max(1, int((self.until - now).total_seconds() + 0.999))


def throttled(
    sessions: sessionmaker[Session],
    model: Any,
    policy: ThrottlePolicy,
    *,
    email: str,
    client_ip: str | None,
    now: datetime,
) -> Throttled | None:
    """Whether an attempt for ``email`` from ``client_ip`` must wait, and until when."""
    since = now - policy.window
    checks: list[tuple[Literal["account", "address"], Any, str, int]] = [
        ("account", model.email, email, policy.account_failures)
    ]
    if client_ip:
        checks.append(("address", model.client_ip, client_ip, policy.address_failures))
    found: Throttled | None = None
    with read_only(sessions) as s:
        for because, column, value, limit in checks:
            count, latest = s.execute(
                select(func.count(), func.max(model.at)).where(column == value, model.at > since)
            ).one()
            delay = policy.delay(int(count), limit)
            if delay is None or latest is None:
                continue
            until = latest + delay
            if until > now and (found is None or until > found.until):
                found = Throttled(until=until, because=because)
    return found


def record_failure(
    sessions: sessionmaker[Session],
    model: Any,
    policy: ThrottlePolicy,
    *,
    part: str,
    email: str,
    client_ip: str | None,
    reason: str,
) -> None:
    """Write and log one failed sign-in; failures older than the window are pruned."""
    now = utcnow()
    with sessions() as s, s.begin():
        s.add(model(at=now, email=email, client_ip=client_ip))
        s.execute(delete(model).where(model.at <= now - policy.window))
    log.warning(
        "%s sign-in failed for %r from %s (%s)",
        part.upper(),
        email,
        client_ip or "an unknown address",
        reason,
        extra={"part": part, "email": email, "client_ip": client_ip, "reason": reason},
    )


def log_throttled(part: str, email: str, client_ip: str | None, refused: Throttled) -> None:
    log.warning(
        "%s sign-in refused for %r from %s: too many failures (%s) until %s",
        part.upper(),
        email,
        client_ip or "an unknown address",
        refused.because,
        refused.until.isoformat(timespec="seconds"),
        extra={
            "part": part,
            "email": email,
            "client_ip": client_ip,
            "reason": f"throttled_{refused.because}",
        },
    )


def forget_failures(sessions: sessionmaker[Session], model: Any, email: str) -> None:
    """After a successful sign-in: the address's failures no longer count."""
    with sessions() as s, s.begin():
        s.execute(delete(model).where(model.email == email))


# ---- the bound on password checks --------------------------------------------------------
class HashBusy(Exception):  # noqa: N818 (a signal: the caller answers 503)
    """Every password-check turn stayed taken for the whole wait."""


#: Runs a function in a password-check thread and returns its result.
HashRunner = Callable[..., Any]


@dataclass
class _HashPool:
    """Turns at password checks, and the threads that run them: as many threads as turns,
    so only those threads ever hold argon2's memory (the C allocator keeps a freed block
    in the arena of the thread that used it; spread over the request threads, the memory
    of every check ever made at once would stay resident)."""

    turns: threading.BoundedSemaphore
    threads: ThreadPoolExecutor


_POOLS: dict[int, _HashPool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(limit: int) -> _HashPool:
    with _POOLS_LOCK:
        pool = _POOLS.get(limit)
        if pool is None:
            pool = _POOLS[limit] = _HashPool(
                threading.BoundedSemaphore(limit),
                ThreadPoolExecutor(max_workers=limit, thread_name_prefix="mailshot-password"),
            )
        return pool


def hash_gate(limit: int) -> threading.BoundedSemaphore:
    """This process's turns at password checks (one set per configured limit, shared by
    the parts served in the process)."""
    return _pool(limit).turns


@contextmanager
def hash_turn(limit: int, wait_seconds: float) -> Iterator[HashRunner]:
    """Hold one of ``limit`` turns for the block (:class:`HashBusy` after ``wait_seconds``)
    and give it a runner that makes its password checks in the pool's threads."""
    pool = _pool(limit)
    if not pool.turns.acquire(timeout=wait_seconds):
        raise HashBusy

    def run(fn: Callable[..., Any], *args: Any) -> Any:
        return pool.threads.submit(fn, *args).result()

    try:
        yield run
    finally:
        pool.turns.release()
