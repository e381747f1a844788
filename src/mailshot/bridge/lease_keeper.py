"""Keeps one leased unit's lease alive: heartbeats in a background thread while the unit
runs, and tells the worker when the lease is lost."""

from __future__ import annotations

import logging
import threading

from mailshot.bridge.clients import CrmClient, Unit
from mailshot.bridge.errors import BridgeError, LeaseLostError

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews one unit's lease in a background thread until stopped or lost."""

    def __init__(self, crm: CrmClient, unit: Unit, interval: float) -> None:
        self._crm = crm
        self._unit = unit
        self._interval = interval
        self._stop = threading.Event()
        self.lost: LeaseLostError | None = None
        self._thread = threading.Thread(target=self._run, name=f"lease-{unit.unit_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._crm.heartbeat(self._unit)
            except LeaseLostError as lost:
                self.lost = lost
                return
            except (BridgeError, Exception) as exc:  # keep trying until the lease is gone
                log.debug("heartbeat of %s failed: %s", self._unit.describe(), exc)

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if a heartbeat learned the lease is gone."""
        if self.lost is not None:
            raise self.lost

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._interval + 1)
