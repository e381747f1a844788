"""The Outbox's writer thread: the SMTP server hands it each received message with a
callback, and it keeps whatever has queued up meanwhile in one transaction (a group
commit), so a stream of messages costs a transaction per batch, not per message. A
message is answered 250 only after the batch that holds it has committed."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from mailshot.esp.services import outbox as service
from mailshot.esp.services.outbox import Incoming, Retention

log = logging.getLogger(__name__)

#: ``done(message_id, None)`` once kept; ``done(None, error)`` if the batch failed.
Done = Callable[[int | None, BaseException | None], None]

#: A batch holds at most this many messages, and stops growing past this many bytes.
BATCH_MESSAGES = 500
BATCH_BYTES = 16 * 2**20


class BatchWriter:
    """Keeps submitted messages in batches, on a thread of its own."""

    def __init__(self, sessions: sessionmaker[Session], keep: Retention) -> None:
        self._sessions = sessions
        self._keep = keep
        self._queue: queue.Queue[tuple[Incoming, Done] | None] = queue.Queue()
        # A daemon: a message not yet committed was never answered 250, so a process that
        # exits without stop() loses nothing it acknowledged (and never hangs on it).
        self._thread = threading.Thread(
            target=self._run, name="mailshot-outbox-writer", daemon=True
        )
        self.batches = 0  # committed so far (for diagnosis and the tests)

    def start(self) -> None:
        self._thread.start()

    def submit(self, message: Incoming, done: Done) -> None:
        self._queue.put((message, done))

    def stop(self, timeout: float = 10.0) -> None:
        """Keep what was submitted, then end the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            size = len(first[0].raw)
            while len(batch) < BATCH_MESSAGES and size < BATCH_BYTES:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += len(item[0].raw)
            self._write(batch)

    def _write(self, batch: list[tuple[Incoming, Done]]) -> None:
        try:
            with self._sessions() as session:
                ids = service.store(session, [m for m, _ in batch], self._keep)
        except Exception as exc:
            log.exception("the Outbox could not store %d message(s)", len(batch))
            for _, done in batch:
                done(None, exc)
            return
        self.batches += 1
        for ident, (_, done) in zip(ids, batch, strict=True):
            done(ident, None)
