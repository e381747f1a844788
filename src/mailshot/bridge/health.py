"""The pool's health loop: every ``health_seconds`` it heartbeats the ESP (whose answer
says whether its integration is paused: nothing is leased then) and the CRM, relaying what
it saw of the ESP, since the CRM never calls the ESP itself; it asks the CRM to queue the
refreshes now due; a clean stop says goodbye so the CRM knows at once. While either side
refuses the bridge's key it keeps trying, and logs the refusal (code, sentence, fix)."""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime

from mailshot import __version__
from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.config import BridgeConfig
from mailshot.bridge.errors import BridgeError, LeaseLostError
from mailshot.bridge.state import PoolState, Side, key_refused
from mailshot.contracts.heartbeats import ESP_ERROR_MAX, HeartbeatIn, WorkerHeartbeat

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EspView:
    """What the worker last saw of the ESP (None: not heard yet), relayed to the CRM."""

    reachable: bool | None = None
    error: str | None = None
    paused: bool | None = None
    paused_at: datetime | None = None


class Health:
    """Heartbeats to both sides and the refresh tick, for one pool."""

    def __init__(
        self, config: BridgeConfig, crm: CrmClient, esp: EspClient, state: PoolState
    ) -> None:
        self.config = config
        self.crm = crm
        self.esp = esp
        self.state = state
        self.esp_view = EspView()
        self._refreshed_at = float("-inf")

    def run(self) -> None:
        """Beat until the pool stops."""
        host = socket.gethostname()
        while True:
            try:
                self.beat(host)
            except Exception:  # a bug must not kill the loop
                log.exception("health beat failed unexpectedly")
            if self.state.stop.wait(self.config.health_seconds):
                return

    def beat(self, host: str) -> None:
        active, last_error = self.state.seen()
        self._esp_health(host, last_error)
        self._crm_health(host, active, last_error)
        self._refresh_if_due()

    def _esp_health(self, host: str, last_error: str | None) -> None:
        """Heartbeat the ESP; remember what it said, for the CRM heartbeat to relay."""
        known = self.esp_view
        paused, paused_at = known.paused, known.paused_at
        beat = HeartbeatIn(
            worker_id=self.config.worker_id, host=host, version=__version__, last_error=last_error
        )
        try:
            paused = self.esp.heartbeat(beat)
            self.state.accepted(Side.ESP)
            if paused != self.state.paused.is_set():
                log.info("the ESP's integration is %s", "paused" if paused else "running")
            (self.state.paused.set if paused else self.state.paused.clear)()
            paused_at = None
            if paused:
                paused_at = known.paused_at or self.esp.integration_page().paused_at
        except (BridgeError, LeaseLostError) as exc:
            if isinstance(exc, BridgeError) and key_refused(exc):
                self.state.note_refusal(Side.ESP, exc)
            else:
                log.warning("ESP heartbeat failed: %s", exc)
            message = exc.message if isinstance(exc, BridgeError) else str(exc)
            error = f"{exc.code}: {message}"[:ESP_ERROR_MAX]
            self.esp_view = EspView(False, error, paused, paused_at)
            return
        self.esp_view = EspView(True, None, paused, paused_at)

    def _crm_health(
        self, host: str, active: int, last_error: str | None, *, stopping: bool = False
    ) -> None:
        view = self.esp_view
        beat = WorkerHeartbeat(
            worker_id=self.config.worker_id,
            host=host,
            version=__version__,
            last_error=last_error,
            active_units=active,
            stopping=stopping,
            esp_reachable=view.reachable,
            esp_error=view.error,
            esp_paused=view.paused,
            esp_paused_at=view.paused_at,
        )
        try:
            self.crm.worker_heartbeat(beat)
            self.state.accepted(Side.CRM)
        except (BridgeError, LeaseLostError) as exc:
            if isinstance(exc, BridgeError) and key_refused(exc):
                self.state.note_refusal(Side.CRM, exc)
            else:
                log.warning("CRM heartbeat failed: %s", exc)

    def _refresh_if_due(self) -> None:
        """Ask the CRM to queue the refreshes of recurring mailshots now due (see
        :mod:`mailshot.crm.sync.refresh`), every ``refresh_seconds``."""
        every = self.config.refresh_seconds
        now = time.monotonic()
        if every <= 0 or now - self._refreshed_at < every:
            return
        self._refreshed_at = now
        try:
            queued = self.crm.refresh()
            if queued:
                log.info("refresh queued the sync of mailshots %s", queued)
        except (BridgeError, LeaseLostError) as exc:
            log.warning("refresh request failed: %s", exc)

    def goodbye(self) -> None:
        """Tell the CRM this worker stopped cleanly (best effort)."""
        try:
            self._crm_health(socket.gethostname(), 0, self.state.last_error, stopping=True)
        except Exception:  # never let a goodbye stop the stop
            log.debug("goodbye heartbeat failed", exc_info=True)
