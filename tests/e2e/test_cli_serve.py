"""The command line end to end: `mailshot serve --demo` as a real process (server and
embedded bridge workers), `mailshot sync --wait` and `mailshot queue` as real processes
against it, Ctrl-C, and a second start that finds everything already provisioned."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from mailshot.app import demo
from mailshot.core import credentials
from mailshot.core.settings import Settings

pytestmark = pytest.mark.e2e


def _mailshot_command() -> list[str]:
    script = Path(sys.executable).parent / "mailshot"
    if script.is_file():
        return [str(script)]
    found = shutil.which("mailshot")
    return [found] if found else [sys.executable, "-m", "mailshot.app.cli.main"]


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSHOT_")}
    env.update(
        PYTHONUNBUFFERED="1",
        MAILSHOT_DATA_DIR=str(settings.data_dir),
        MAILSHOT_CRM_DATABASE_URL=settings.crm_db_url(),
        MAILSHOT_ESP_DATABASE_URL=settings.esp_db_url(),
        MAILSHOT_LEASE_SECONDS="5",
        MAILSHOT_HEARTBEAT_SECONDS="1",
        MAILSHOT_OUTBOX_SMTP_PORT="0",  # the Outbox's SMTP server on a free port
        COLUMNS="200",
        **extra,
    )
    return env


class Served:
    """A `mailshot serve` process whose output is read line by line in a thread."""

    def __init__(self, settings: Settings, *args: str) -> None:
        self.process = subprocess.Popen(
            [*_mailshot_command(), "serve", "--port", "0", *args],
            env=_env(settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.output)}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def serve(settings: Settings) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        served.stop()


def _cli(settings: Settings, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_mailshot_command(), *args],
        env=_env(settings, MAILSHOT_PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_serve_demo_sync_queue_and_ctrl_c(settings: Settings, serve: list[Served]) -> None:
    served = Served(settings, "--demo", "--demo-people", "300", "--workers", "2")
    serve.append(served)
    port = int(served.wait_for(r"mailshot is running at http://127\.0\.0\.1:(\d+)")[1])
    smtp_port = int(served.wait_for(r"Outbox: +SMTP on 127\.0\.0\.1:(\d+)")[1])
    served.wait_for(r"First run\. Log in to the CRM and ESP as admin@example\.com")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:  # no relay: the Outbox
        smtp.sendmail("team@example.com", ["someone@example.net"], b"Subject: Kept\r\n\r\nHi\r\n")
    kept = _cli(settings, port, "outbox", "list", "--json")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert '"subject": "Kept"' in kept.stdout
    password = served.wait_for(r"with the password (\S+) \(shown only this once\)")[1]
    served.wait_for(re.escape(f'mailshot sync "{demo.READY_MAILSHOT}" --wait'))
    assert password not in (settings.data_dir / "credentials.json").read_text()

    ok = _cli(settings, port, "sync", demo.READY_MAILSHOT, "--wait", "--timeout", "90")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    written = re.search(r"Synchronised '.*': ([\d,]+) recipients", _flat(ok.stdout))
    assert written, ok.stdout
    recipients = int(written[1].replace(",", ""))
    assert recipients > 150

    # The ESP holds exactly that audience, under the CRM mailshot's id.
    creds = credentials.load(settings.credentials_file)
    assert creds.esp_integration_key is not None and creds.cli_key is not None
    crm_key = creds.cli_key.get_secret_value()
    base = f"http://127.0.0.1:{port}"
    mailshots = httpx.get(
        f"{base}/crm/api/v1/mailshots",
        params={"name": demo.READY_MAILSHOT},
        headers={"Authorization": f"Bearer {crm_key}"},
    ).json()["items"]
    campaign = httpx.get(
        f"{base}/esp/api/v1/integrated-campaigns/{mailshots[0]['id']}",
        headers={"Authorization": f"Bearer {creds.esp_integration_key.get_secret_value()}"},
    )
    assert campaign.status_code == 200, campaign.text
    assert campaign.json()["audience_count"] == recipients

    # The demo send, as the banner says: every recipient goes to the Outbox, and is counted.
    served.wait_for(re.escape(f'mailshot send "{demo.READY_MAILSHOT}" --wait'))
    sent = _cli(settings, port, "send", demo.READY_MAILSHOT, "--wait")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    said_sent = _flat(sent.stdout)
    assert f"{recipients:,} recipients; sent {recipients:,} failed 0 deferred 0 in doubt 0" in (
        said_sent
    ), said_sent
    outbox = orjson.loads(_cli(settings, port, "outbox", "list", "--json").stdout)
    assert outbox["count"] == recipients + 1  # and the message sent by hand above

    refused = _cli(settings, port, "sync", demo.LONG_NAME_MAILSHOT, "--wait", "--timeout", "90")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = _flat(refused.stdout + refused.stderr)
    # Refused with the ESP's limit: up front by the CRM's preflight, or by the ESP itself.
    assert "SYNC_PREFLIGHT_FAILED" in said or "CAMPAIGN_NAME_TOO_LONG" in said, said
    assert "120 characters" in said and "at most 100" in said
    assert "Fix:" in said

    listed = _cli(settings, port, "queue", "--json")
    assert listed.returncode == 0, listed.stderr
    assert orjson.loads(listed.stdout) == []

    assert served.stop() == 0
    served.wait_for(r"mailshot stopped\.", timeout=5)
    assert "Traceback" not in "".join(served.output)
    # One server said it started and stopped: the ESP process does not repeat it (nor
    # its "Press CTRL+C to quit", not meant for it).
    for said_once in ("Started server process", "CTRL+C to quit", "Finished server process"):
        assert sum(said_once in line for line in served.output) == 1, said_once


def test_a_second_start_is_already_provisioned(settings: Settings, serve: list[Served]) -> None:
    first = Served(settings, "--demo", "--demo-people", "50", "--no-worker")
    serve.append(first)
    first.wait_for(r"First run\.")
    first.wait_for(r"Demo data is loaded\.")
    assert first.stop() == 0
    keys = (settings.data_dir / "credentials.json").read_bytes()

    second = Served(settings, "--demo", "--demo-people", "50", "--no-worker")
    serve.append(second)
    second.wait_for(r"Bridge: not started here")
    second.wait_for(r"Demo data was already there\.")
    assert second.stop() == 0
    assert not [line for line in second.output if "First run" in line or "password" in line]
    assert (settings.data_dir / "credentials.json").read_bytes() == keys


def test_serve_without_workers_and_a_separate_worker(
    settings: Settings, serve: list[Served]
) -> None:
    served = Served(settings, "--demo", "--demo-people", "100", "--no-worker")
    serve.append(served)
    port = int(served.wait_for(r"mailshot is running at http://127\.0\.0\.1:(\d+)")[1])
    served.wait_for(r"Bridge: not started here; run `mailshot worker`")

    queued = _cli(settings, port, "sync", demo.READY_MAILSHOT)
    assert queued.returncode == 0, queued.stderr
    assert "Queued" in queued.stdout

    worker = subprocess.Popen(
        [*_mailshot_command(), "worker", "--concurrency", "1"],
        env=_env(settings, MAILSHOT_PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        done = _cli(settings, port, "sync", demo.READY_MAILSHOT, "--wait", "--timeout", "90")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Synchronised" in done.stdout
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, out
        assert "Bridge workers stopped." in out
        assert "Traceback" not in out
    finally:
        if worker.poll() is None:
            worker.kill()


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (from any of its threads) and that still run."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[1])


def _gone(pid: int, timeout: float) -> bool:
    """True once ``pid`` no longer runs (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("backend", ["sqlite"])  # processes, whatever the database
def test_the_workers_write_through_an_esp_process_started_again_if_it_dies(
    settings: Settings, serve: list[Served]
) -> None:
    served = Served(settings, "--demo", "--demo-people", "200", "--workers", "1")
    serve.append(served)
    port = int(served.wait_for(r"mailshot is running at http://127\.0\.0\.1:(\d+)")[1])
    pid = int(served.wait_for(r"writing to the ESP through a second process \(pid (\d+)\)")[1])
    assert _parent_of(pid) == served.process.pid
    assert b"mailshot.app.esp_process" in Path(f"/proc/{pid}/cmdline").read_bytes()

    os.kill(pid, signal.SIGKILL)
    served.wait_for(r"the ESP process for the bridge workers exited \(-9\); starting it again")
    done = _cli(settings, port, "sync", demo.READY_MAILSHOT, "--wait", "--timeout", "90")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Synchronised" in done.stdout
    (again,) = _children(served.process.pid)
    assert again != pid

    assert served.stop() == 0
    assert _gone(again, timeout=5)
    assert "Traceback" not in "".join(served.output)


@pytest.mark.parametrize("backend", ["sqlite"])  # processes, whatever the database
def test_the_esp_process_stops_when_serve_is_killed(
    settings: Settings, serve: list[Served]
) -> None:
    served = Served(settings, "--no-worker")
    serve.append(served)
    served.wait_for(r"Bridge: not started here")
    assert _children(served.process.pid) == []
    served.stop()

    served = Served(settings, "--workers", "1")
    serve.append(served)
    pid = int(served.wait_for(r"writing to the ESP through a second process \(pid (\d+)\)")[1])
    served.process.kill()
    served.process.wait(timeout=10)
    assert _gone(pid, timeout=5)
