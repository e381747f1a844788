"""The real server and ``python -m mailshot.bridge`` workers as subprocesses, shared by the
e2e and browser fixtures: a free port of 127.0.0.1, the MAILSHOT_* environment of a
``Settings`` (its per-test databases), starting a process with its output in a log file,
waiting for /healthz, and stopping a process.

Run as a module it is the server those fixtures start: the embedded app (CRM at /crm, ESP
at /esp) served by uvicorn with ``serve``'s options, configured from the MAILSHOT_*
environment:
``python -m tests.support.live_server``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from mailshot.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
#: The module the fixtures run as the server (this one).
SERVER_MODULE = "tests.support.live_server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subprocess_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """This process's environment without its MAILSHOT_* variables, plus the databases and
    data folder of ``settings`` and ``extra`` as MAILSHOT_<NAME> variables."""
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


def spawn(module: str, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m module *args`` from the repository root, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Wait until the server at ``url`` answers /healthz; raise if it exits or takes longer
    than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start within {timeout:g} s")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a process still running; kill it if it has not ended 10 s later."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main() -> None:
    import uvicorn

    from mailshot.app.server import create_app
    from mailshot.core.web.server import uvicorn_options

    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        **settings.proxy_options(),
        **uvicorn_options(settings),
    )


if __name__ == "__main__":
    main()
