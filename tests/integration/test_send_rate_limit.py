"""Sending rate limits: the local slots pace one process; the global limit kept in the ESP
database holds two OS processes sending through one relay to one SMTP server to the relay's
messages per second together, measured from the server's receive times; on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.esp.models import SendRateLimit
from mailshot.esp.sending.ratelimit import DbRateLimiter, LocalRateLimiter
from tests.support import aio
from tests.support.smtpd import smtp_server

ROOT = Path(__file__).resolve().parents[2]
RATE = 40.0
PER_PROCESS = 100


def _worker(url: str, port: int, first: int) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.support.rate_worker", url, str(port), str(first)]
    args += [str(PER_PROCESS), str(RATE)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def test_two_processes_hold_one_rate_together(settings: Settings) -> None:
    url = settings.esp_db_url()
    with smtp_server() as server:
        workers = [_worker(url, server.port, first) for first in (0, 10_000)]
        for w in workers:  # both past their imports and set up
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        reports = [json.loads(w.communicate(timeout=60)[0]) for w in workers]
        assert [w.returncode for w in workers] == [0, 0]
    assert [r["outcomes"] for r in reports] == [{"sent": PER_PROCESS}] * 2
    times = sorted(m.at for m in server.received)
    assert len(times) == 2 * PER_PROCESS
    # the two sent at the same time: the span they share is most of the whole run
    spans = [
        [m.at for m in server.received if m.rcpt_tos[0].startswith(f"p{first}-")]
        for first in (0, 10_000)
    ]
    overlap = min(max(s) for s in spans) - max(min(s) for s in spans)
    assert overlap > 0.7 * (times[-1] - times[0]), (overlap, times[-1] - times[0])
    # together the rate: over the whole run within 5 % above (timing) and 20 % below;
    # each process alone would send at the rate, the two at twice it
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 0.8 * RATE <= rate <= 1.05 * RATE, rate
    # no burst: any two seconds hold at most 10 % more than the rate allows (the
    # receive times carry the jitter of a busy machine's event loops)
    window = max(sum(1 for t in times if t0 <= t < t0 + 2.0) for t0 in times)
    assert window <= 1.1 * 2 * RATE, window
    # claims were batched: a few per second per process, not one per message
    assert all(r["claims"] <= PER_PROCESS / 4 for r in reports), reports


def test_unused_slots_are_given_back(settings: Settings) -> None:
    engine = make_engine(settings.esp_db_url())
    sessions = make_sessionmaker(engine)

    async def go() -> tuple[float, float]:
        limiter = DbRateLimiter(sessions)
        await limiter.acquire("r1", 50.0)  # claims a batch of 10 slots, uses one
        with sessions() as s:
            claimed = s.scalar(select(SendRateLimit.tat).where(SendRateLimit.relay == "r1"))
        await limiter.aclose()
        with sessions() as s:
            after = s.scalar(select(SendRateLimit.tat).where(SendRateLimit.relay == "r1"))
        assert claimed is not None and after is not None
        return claimed, after

    claimed, after = aio.run(go())
    engine.dispose()
    assert abs((claimed - after) - 9 / 50.0) < 1e-6


def test_local_rate_limiter_paces_slots() -> None:
    async def go() -> float:
        limiter = LocalRateLimiter()
        started = time.monotonic()
        for _ in range(21):
            await limiter.acquire("r", 100.0)
        return time.monotonic() - started

    assert 0.19 <= aio.run(go()) < 0.5  # 20 intervals of 10 ms after the first
