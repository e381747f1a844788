"""One leased unit's heartbeats: a background thread renews its lease until stopped or
told the lease is gone, which :meth:`LeaseKeeper.check` then raises between steps."""

from __future__ import annotations

import logging
import threading

from mailshot.bridge.clients import CrmClient
from mailshot.bridge.errors import LeaseLostError
from mailshot.contracts.units import UnitPublic

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews one unit's lease in a background thread until stopped or lost."""

    def __init__(self, crm: CrmClient, unit: UnitPublic, interval: float) -> None:
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
            except Exception as exc:  # keep trying until the lease is gone
                log.debug("heartbeat of %s failed: %s", self._unit.describe(), exc)

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if a heartbeat learned the lease is gone."""
        if self.lost is not None:
            raise self.lost

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._interval + 1)
