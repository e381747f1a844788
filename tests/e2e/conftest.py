"""End-to-end fixtures: the real server as a subprocess on a free port of 127.0.0.1 (on the
per-test databases of the ``settings`` fixture), real ``python -m mailshot.bridge`` worker
processes holding the test keys, and a small HTTP client of the CRM API."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailshot.core.settings import Settings
from tests.conftest import Keys
from tests.support.live_server import (
    SERVER_MODULE,
    free_port,
    spawn,
    stop,
    subprocess_env,
    wait_until_up,
)


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    @property
    def crm(self) -> str:
        return f"{self.url}/crm"

    @property
    def esp(self) -> str:
        return f"{self.url}/esp"


@dataclass
class Worker:
    env: dict[str, str]
    args: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.process = spawn("mailshot.bridge", self.env, self.log, *self.args)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


@dataclass
class Processes:
    started: list[Worker | Server] = field(default_factory=list)

    def close(self) -> None:
        for p in reversed(self.started):
            if p.process is not None:
                stop(p.process)


@pytest.fixture
def processes() -> Iterator[Processes]:
    procs = Processes()
    yield procs
    procs.close()


ServerFactory = Callable[..., Server]
WorkerFactory = Callable[..., Worker]


@pytest.fixture
def start_server(settings: Settings, processes: Processes, tmp_path: Path) -> ServerFactory:
    """Start the real server with extra MAILSHOT_* settings; wait for /healthz."""

    def start(**extra: Any) -> Server:
        port = free_port()
        env = subprocess_env(settings, host="127.0.0.1", port=port, **extra)
        log = tmp_path / f"server-{port}.log"
        server = Server(url=f"http://127.0.0.1:{port}", process=spawn(SERVER_MODULE, env, log))
        processes.started.append(server)
        wait_until_up(server.url, server.process, log)
        return server

    return start


@pytest.fixture
def start_worker(
    settings: Settings, keys: Keys, processes: Processes, tmp_path: Path
) -> WorkerFactory:
    """Start a ``python -m mailshot.bridge`` process against a server (or a proxy)."""
    counter = iter(range(1000))

    def start(
        server: Server, *, esp_url: str | None = None, args: tuple[str, ...] = (), **extra: Any
    ) -> Worker:
        env = subprocess_env(
            settings,
            crm_url=server.crm,
            esp_url=esp_url or server.esp,
            bridge_crm_key=keys.crm_integration,
            bridge_esp_key=keys.esp_integration,
            **extra,
        )
        worker = Worker(env=env, args=list(args), log=tmp_path / f"worker-{next(counter)}.log")
        processes.started.append(worker)
        return worker.start()

    return start


class Crm:
    """The CRM API as the user sees it (admin key)."""

    def __init__(self, server: Server, keys: Keys) -> None:
        self.http = httpx.Client(
            base_url=f"{server.crm}/api/v1",
            headers={"Authorization": f"Bearer {keys.crm_admin}"},
            timeout=30,
        )

    def synchronise(self, mailshot_id: int) -> dict[str, Any]:
        r = self.http.post(f"/mailshots/{mailshot_id}/synchronise")
        assert r.status_code == 202, r.text
        out: dict[str, Any] = r.json()
        return out

    def status(self, mailshot_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self.http.get(f"/mailshots/{mailshot_id}/sync").json()
        return out

    def wait(self, mailshot_ids: list[int], timeout: float = 60) -> dict[int, dict[str, Any]]:
        """Wait until every mailshot's sync has ended; return their statuses."""
        deadline = time.monotonic() + timeout
        pending = set(mailshot_ids)
        out: dict[int, dict[str, Any]] = {}
        while pending:
            for m in list(pending):
                st = self.status(m)
                if st["state"] in ("synchronised", "failed", "cancelled"):
                    out[m] = st
                    pending.discard(m)
            if pending:
                if time.monotonic() > deadline:
                    stuck = {m: self.status(m) for m in pending}
                    raise AssertionError(f"syncs did not end in {timeout} s: {stuck}")
                time.sleep(0.1)
        return out


@pytest.fixture
def server(start_server: ServerFactory) -> Server:
    return start_server()


@pytest.fixture
def crm_api(server: Server, keys: Keys) -> Iterator[Crm]:
    api = Crm(server, keys)
    yield api
    api.http.close()
