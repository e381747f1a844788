"""The ESP's API in a process of its own (:class:`EspProcess`,
``python -m mailshot.app.esp_process``), for the bridge workers of ``mailshot serve``: on a
socket ``serve`` opened, with the same settings and databases, restarted if it dies and
stopped when ``serve`` goes (why and how fast: docs/ARCHITECTURE.md, docs/PERFORMANCE.md)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import httpx

log = logging.getLogger(__name__)

#: How long the second process gets to answer its health check when started.
START_SECONDS = 60.0
#: How long it gets to finish its requests when asked to stop.
STOP_SECONDS = 10.0
#: Wait before starting it again after it exited on its own.
RESTART_DELAY_SECONDS = 1.0


class EspProcess:
    """The second process serving the ESP (see the module's docstring)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the process and a thread that starts it again if it exits."""
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="esp-process", daemon=True)
        self._watcher.start()

    def wait_ready(self, timeout: float = START_SECONDS) -> bool:
        """True once the process answers its health check (False after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping.is_set():
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return False

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Ask the process to stop (SIGTERM), kill it after ``timeout``; close the socket."""
        with self._lock:  # no new process is started after this (see _spawn)
            self._stopping.set()
            process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        self._socket.close()

    def _spawn(self) -> None:
        fd = self._socket.fileno()
        command = [sys.executable, "-m", "mailshot.app.esp_process", "--fd", str(fd)]
        with self._lock:
            if self._stopping.is_set():  # stop() came first: it would not see this one
                return
            self._process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed arguments)
                command, pass_fds=(fd,), start_new_session=True
            )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                process = self._process
            if process is None:
                return
            code = process.wait()
            if self._stopping.wait(RESTART_DELAY_SECONDS):
                return
            log.error("the ESP process for the bridge workers exited (%s); starting it again", code)
            self._spawn()


def _exit_with_parent(parent: int) -> None:
    """Stop this process once the process that started it is gone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Serve the ESP on the listening socket ``--fd`` (settings as ``mailshot serve``'s)."""
    import uvicorn

    from mailshot.app import runtime_tuning
    from mailshot.core.logs import configure as configure_logging
    from mailshot.core.settings import Settings
    from mailshot.core.web.server import uvicorn_options
    from mailshot.esp.app import create_esp_app

    parser = argparse.ArgumentParser(prog="python -m mailshot.app.esp_process")
    parser.add_argument("--fd", type=int, required=True, help="a listening socket to serve on")
    args = parser.parse_args(argv)
    runtime_tuning.tune_allocator()  # before any thread starts
    settings = Settings()
    configure_logging(settings)
    if settings.log_level != "DEBUG":
        # ``serve`` has said it is running: this process's own start-up and shutdown lines
        # (and uvicorn's "Press CTRL+C to quit", not meant for it) would only repeat it.
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    app = create_esp_app(settings)
    runtime_tuning.freeze_gc()
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    uvicorn.run(
        app,
        fd=args.fd,
        log_config=None,
        access_log=settings.log_level == "DEBUG",
        timeout_graceful_shutdown=int(STOP_SECONDS),
        **settings.proxy_options(),
        **uvicorn_options(settings),
    )


if __name__ == "__main__":
    main()
