"""Browser-test fixtures: the real server as a subprocess on a free port of 127.0.0.1 (on
the per-test SQLite databases of the ``settings`` fixture), ``python -m mailshot.bridge``
workers holding the test keys, and Debian's Chromium driven by Playwright.

Playwright cannot download browsers here, so Chromium is the system one
(``apt-get install chromium``). Without it these tests fail with that instruction: a
skipped browser test must never pass for a green run.
Screenshots go to ``artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.support.live_server import (
    ROOT,
    SERVER_MODULE,
    free_port,
    spawn,
    stop,
    subprocess_env,
    wait_until_up,
)
from tests.support.ui_support import PageUsers, make_page_users

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


@dataclass
class Site:
    """The running server, the users who can sign in, and a way to start bridge workers."""

    url: str
    users: PageUsers
    start_worker: Callable[[], subprocess.Popen[bytes]]


@pytest.fixture
def site(settings: Settings, keys: Keys, tmp_path: Path) -> Iterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    tuning = {"chunk_size": 40, "lease_seconds": 5, "heartbeat_seconds": 1}
    server_log = tmp_path / "server.log"
    server = spawn(
        SERVER_MODULE,
        subprocess_env(settings, host="127.0.0.1", port=port, **tuning),
        server_log,
    )
    started = [server]

    def start_worker() -> subprocess.Popen[bytes]:
        env = subprocess_env(
            settings,
            crm_url=f"{url}/crm",
            esp_url=f"{url}/esp",
            bridge_crm_key=keys.crm_integration,
            bridge_esp_key=keys.esp_integration,
            **tuning,
        )
        proc = spawn("mailshot.bridge", env, tmp_path / f"worker-{len(started)}.log")
        started.append(proc)
        return proc

    try:
        wait_until_up(url, server, server_log)
        yield Site(url=url, users=make_page_users(settings), start_worker=start_worker)
    finally:
        for proc in reversed(started):
            stop(proc)


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
