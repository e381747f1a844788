"""``X-Forwarded-For`` against the real servers on 127.0.0.1: ``mailshot serve`` (its
uvicorn) and the ESP's second process (``mailshot.app.esp_process``). Without trusted proxies
the header is ignored: a forged one neither lets a key in from an address its permitted IPs
do not include, nor lands in ``key_refusals``. From a configured proxy address
(``MAILSHOT_TRUSTED_PROXIES``) it is believed."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mailshot.app.cli.keys import app as keys_cli
from mailshot.app.esp_process import EspProcess
from mailshot.core import credentials
from mailshot.core.settings import Settings
from tests.e2e.test_cli_serve import _env, _mailshot_command

pytestmark = pytest.mark.e2e

#: Where the forged requests claim to come from (documentation networks).
PERMITTED = "203.0.113.7"
FORGED = "198.51.100.9"


class Serve:
    """``mailshot serve --no-worker`` on a free port, its output read in a thread."""

    def __init__(self, settings: Settings, **extra: str) -> None:
        self.process = subprocess.Popen(
            [*_mailshot_command(), "serve", "--port", "0", "--no-worker"],
            env=_env(settings, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._port()}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def _port(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if found := re.search(r"mailshot is running at http://127\.0\.0\.1:(\d+)", line):
                return int(found[1])
        raise AssertionError("serve did not start:\n" + "".join(self.output))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def started() -> Iterator[list[Any]]:
    running: list[Any] = []
    yield running
    for each in reversed(running):
        each.stop()


def _key(settings: Settings, monkeypatch: pytest.MonkeyPatch, side: str, scope: str) -> str:
    """A key of the admin (made on first run) usable from :data:`PERMITTED` only."""
    for name, value in _env(settings).items():
        if name.startswith("MAILSHOT_"):
            monkeypatch.setenv(name, value)
    args = ["create", "--side", side, "--name", "from one address"]
    args += ["--user", "admin@example.com", "--scope", scope, "--permitted-ip", PERMITTED]
    result = CliRunner().invoke(keys_cli, [*args, "--json"])
    assert result.exit_code == 0, result.stdout + result.stderr
    token: str = json.loads(result.stdout)["token"]
    return token


def _esp_process(settings: Settings, monkeypatch: pytest.MonkeyPatch, **extra: str) -> EspProcess:
    """The ESP's second process as ``serve`` starts it (its environment: these settings)."""
    for name, value in _env(settings, **extra).items():
        monkeypatch.setenv(name, value)
    for name in list(os.environ):
        if name.startswith("MAILSHOT_") and name not in _env(settings, **extra):
            monkeypatch.delenv(name)
    esp = EspProcess()
    esp.start()
    assert esp.wait_ready(), "the ESP process did not start"
    return esp


def _refusals(url: str, admin_key: str) -> list[dict[str, Any]]:
    r = httpx.get(url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def _get(url: str, token: str, forwarded_for: str) -> httpx.Response:
    return httpx.get(
        url,
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": forwarded_for},
        timeout=30,
    )


def test_a_forged_forwarded_for_is_ignored(
    settings: Settings, started: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve = Serve(settings)
    started.append(serve)
    admin_key = credentials.load(settings.credentials_file).cli_key
    assert admin_key is not None
    crm_key = _key(settings, monkeypatch, "crm", "marketing:read")

    r = _get(f"{serve.url}/crm/api/v1/mailshots", crm_key, PERMITTED)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "AUTH_IP_NOT_PERMITTED"
    assert "127.0.0.1" in r.json()["error"]["message"]
    _get(f"{serve.url}/crm/api/v1/mailshots", "mscrm_000000000000_forged", FORGED)
    recorded = _refusals(f"{serve.url}/crm/api/v1/key-refusals", admin_key.get_secret_value())
    assert {r["reason"] for r in recorded} == {"AUTH_IP_NOT_PERMITTED", "AUTH_UNKNOWN_KEY"}
    assert {r["client_ip"] for r in recorded} == {"127.0.0.1"}

    # The ESP's second process too.
    esp = _esp_process(settings, monkeypatch)
    started.append(esp)
    esp_key = _key(settings, monkeypatch, "esp", "campaigns:read")
    r = _get(f"{esp.url}/api/v1/campaigns", esp_key, PERMITTED)
    assert r.status_code == 403 and r.json()["error"]["code"] == "AUTH_IP_NOT_PERMITTED"


def test_a_trusted_proxy_is_believed(
    settings: Settings, started: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    serve = Serve(settings, MAILSHOT_TRUSTED_PROXIES="127.0.0.1")
    started.append(serve)
    admin_key = credentials.load(settings.credentials_file).cli_key
    assert admin_key is not None
    crm_key = _key(settings, monkeypatch, "crm", "marketing:read")

    r = _get(f"{serve.url}/crm/api/v1/mailshots", crm_key, PERMITTED)
    assert r.status_code == 200, r.text
    keys = httpx.get(
        f"{serve.url}/crm/api/v1/api-keys",
        headers={"Authorization": f"Bearer {admin_key.get_secret_value()}"},
    ).json()["items"]
    assert {k["last_used_ip"] for k in keys if k["name"] == "from one address"} == {PERMITTED}
    r = _get(f"{serve.url}/crm/api/v1/mailshots", crm_key, FORGED)
    assert r.status_code == 403 and FORGED in r.json()["error"]["message"]
    recorded = _refusals(f"{serve.url}/crm/api/v1/key-refusals", admin_key.get_secret_value())
    assert [(r["reason"], r["client_ip"]) for r in recorded] == [("AUTH_IP_NOT_PERMITTED", FORGED)]

    esp = _esp_process(settings, monkeypatch, MAILSHOT_TRUSTED_PROXIES="127.0.0.1")
    started.append(esp)
    esp_key = _key(settings, monkeypatch, "esp", "campaigns:read")
    assert _get(f"{esp.url}/api/v1/campaigns", esp_key, PERMITTED).status_code == 200
