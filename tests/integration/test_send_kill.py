"""A send worker process killed with SIGKILL at random moments: in every trial, once other
workers finish the send, every recipient is in exactly one state, none is left pending,
sending or deferred, each sent one was received exactly once and no one twice (those in
doubt at most once: they are never resent by themselves). SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.support.sends import campaign, drain, esp_client, ledger, people, send_settings
from tests.support.smtpd import Script, smtp_server

ROOT = Path(__file__).resolve().parents[2]
TRIALS = 3
KILLS = 1


def _worker(settings: Settings) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.send_worker", settings.model_dump_json()],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    return proc


def test_sigkill_at_random_moments_loses_and_doubles_no_one(settings: Settings, keys: Keys) -> None:
    rng = random.Random(17)
    with smtp_server(Script(data_delay=0.003)) as server:
        live = send_settings(
            settings, server.port, send_window=5, lease_seconds=1.0, heartbeat_seconds=0.3
        )
        live = live.model_copy(update={"max_takeovers": 100})
        with esp_client(live, keys.esp_admin) as esp:
            for trial in range(TRIALS):
                domain = f"trial{trial}.example.org"
                campaign(esp, 10 + trial, people(150, domain))
                send_id = esp.post(f"integrated-campaigns/{10 + trial}/send").json()["id"]
                for _ in range(KILLS):
                    proc = _worker(live)
                    time.sleep(rng.uniform(0.05, 0.6))
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                done = drain(esp, live, send_id)
                rows = ledger(esp, send_id)
                received = Counter(r for r in server.recipients() if r.endswith("@" + domain))
                states = Counter(r["state"] for r in rows)
                assert done["state"] == "sent", done
                assert len(rows) == 150 and len({r["email"] for r in rows}) == 150
                assert states == Counter({k: v for k, v in done["counts"].items() if v})
                assert set(states) <= {"sent", "in_doubt"}
                for row in rows:
                    got = received[row["email"]]
                    assert got == 1 if row["state"] == "sent" else got <= 1, row
                assert states["in_doubt"] <= KILLS * 2 * 5  # at most two windows per kill
