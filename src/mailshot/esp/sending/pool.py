"""Send workers in the background of a process: :class:`SendWorkerPool` runs ``count``
:class:`~mailshot.esp.sending.runner.SendRunner` on one event loop in its own thread,
against the ESP database (``mailshot send-worker``, and ``mailshot serve`` beside its
bridge workers). ``stop`` lets them finish the windows in flight and hand back their units."""

from __future__ import annotations

import asyncio
import logging
import threading

from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.esp.sending.runner import SendRunner

log = logging.getLogger(__name__)


class SendWorkerPool:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine = make_engine(settings.esp_db_url())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mailshot-send", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sessions = make_sessionmaker(self._engine)

        async def main() -> None:
            runners = [SendRunner(sessions, self.settings) for _ in range(self.count)]
            await asyncio.gather(*(r.run(self._stop) for r in runners))

        try:
            asyncio.run(main())
        except Exception:
            log.exception("the send workers stopped on an error")

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the workers; True when they ended within ``timeout`` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            alive = self._thread.is_alive()
        else:
            alive = False
        if not alive:
            self._engine.dispose()
        return not alive

    def run_forever(self) -> None:
        """Run until interrupted (Ctrl-C or SIGTERM)."""
        import signal

        self.start()
        previous = signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
            signal.signal(signal.SIGTERM, previous)
