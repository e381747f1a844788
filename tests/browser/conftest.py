"""Browser-test fixtures: the real server as a subprocess on a free port of 127.0.0.1 (on
the per-test SQLite databases of the ``settings`` fixture), ``python -m mailshot.bridge``
workers holding the test keys, and Debian's Chromium driven by Playwright.

Playwright cannot download browsers here, so Chromium is the system one
(``apt-get install chromium``). Without it these tests fail with that instruction: a
skipped browser test must never pass for a green run.
Screenshots go to ``artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailshot.settings import Settings
from tests.browser.ui_support import PageUsers, make_page_users
from tests.conftest import Keys

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def backend() -> str:
    """Browser tests run on SQLite only (the pages' SQL is the services', tested on both)."""
    return "sqlite"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(settings: Settings, **extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSHOT_")}
    env.update(
        {
            "MAILSHOT_CONFIG": str(settings.data_dir / "none.toml"),
            "MAILSHOT_DATA_DIR": str(settings.data_dir),
            "MAILSHOT_CRM_DATABASE_URL": settings.crm_db_url(),
            "MAILSHOT_ESP_DATABASE_URL": settings.esp_db_url(),
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update({f"MAILSHOT_{k.upper()}": str(v) for k, v in extra.items()})
    return env


@dataclass
class Site:
    """The running server, the users who can sign in, and a way to start bridge workers."""

    url: str
    users: PageUsers
    start_worker: Callable[[], subprocess.Popen[bytes]]


@pytest.fixture
def site(settings: Settings, keys: Keys, tmp_path: Path) -> Iterator[Site]:
    port = _free_port()
    started: list[subprocess.Popen[bytes]] = []
    server_log = tmp_path / "server.log"
    tuning = {"chunk_size": 40, "lease_seconds": 5, "heartbeat_seconds": 1}
    with server_log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.serve_app"],
            env=_env(settings, host="127.0.0.1", port=port, **tuning),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started.append(server)
    url = f"http://127.0.0.1:{port}"

    def start_worker() -> subprocess.Popen[bytes]:
        env = _env(
            settings,
            crm_url=f"{url}/crm",
            esp_url=f"{url}/esp",
            bridge_crm_key=keys.crm_integration,
            bridge_esp_key=keys.esp_integration,
            **tuning,
        )
        with (tmp_path / f"worker-{len(started)}.log").open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mailshot.bridge"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        return proc

    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited: {server_log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 30 s")
            time.sleep(0.1)
        yield Site(url=url, users=make_page_users(settings), start_worker=start_worker)
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    from playwright import sync_api

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: apt-get install -y chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(chromium: Any) -> Iterator[Callable[[], Any]]:
    """Open a page in a fresh browser context (its own cookies), 1280x860 like a laptop."""
    contexts: list[Any] = []

    def open_page() -> Any:
        context = chromium.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def shot() -> Callable[[Any, str], None]:
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        # Chromium leaves a sandboxed (out-of-process) frame below the fold blank in a
        # full-page shot: the preview gets a picture of its own.
        previews = page.locator("iframe.preview")
        if previews.count():
            previews.first.screenshot(path=str(SHOTS / f"{name}-preview.png"))

    return take
