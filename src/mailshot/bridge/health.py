"""The worker's standing with both sides: heartbeats to the ESP (paused or running,
reachable or why not) and to the CRM (relaying what it saw of the ESP, since the CRM never
calls the ESP), the refresh of recurring mailshots, and a refused key (nothing is leased
while either side refuses it; logged when it starts and once a minute)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from mailshot import __version__
from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.config import BridgeConfig
from mailshot.bridge.errors import BridgeError, LeaseLostError

log = logging.getLogger(__name__)

#: A refused key is logged when the refusal starts, then at most this often.
_REFUSAL_LOG_EVERY = 60.0


def key_refused(err: BridgeError) -> bool:
    """Whether the other side refused the bridge's key (rather than the request)."""
    return err.status in (401, 403) and err.code.startswith("AUTH_")


class Health:
    """What the worker knows of both sides, kept by the pool's health loop and read by its
    lease loops. ``note_error(text, show)`` records the worker's last error."""

    def __init__(
        self,
        config: BridgeConfig,
        crm: CrmClient,
        esp: EspClient,
        note_error: Callable[[str, bool], None],
    ) -> None:
        self.config = config
        self.crm = crm
        self.esp = esp
        self._note_error = note_error
        self._refreshed_at: float = float("-inf")
        self._paused = threading.Event()
        #: Set while the CRM or the ESP refuses the bridge's key: nothing is leased.
        self._refused: dict[str, threading.Event] = {
            "CRM": threading.Event(),
            "ESP": threading.Event(),
        }
        self._refusal_logged: dict[str, tuple[str, float]] = {}
        self._esp_view: dict[str, Any] = {}

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def pause(self) -> None:
        """The ESP said it is paused: lease nothing until a heartbeat says it runs."""
        self._paused.set()

    @property
    def refused(self) -> bool:
        """Whether the CRM or the ESP refuses the bridge's key (nothing is leased then)."""
        return any(e.is_set() for e in self._refused.values())

    def note_refusal(self, side: str, err: BridgeError) -> None:
        """Remember that ``side`` refuses the key; log it when it starts and once a minute."""
        self._refused[side].set()
        now = time.monotonic()
        code, at = self._refusal_logged.get(side, ("", 0.0))
        if code != err.code or now - at >= _REFUSAL_LOG_EVERY:
            self._refusal_logged[side] = (err.code, now)
            log.error(
                "the %s refuses the bridge's API key: %s: %s Fix: %s Leasing is paused; "
                "trying again every %g s.",
                side,
                err.code,
                err.message,
                err.fix or "-",
                self.config.health_seconds,
                extra={"side": side, "code": err.code},
            )
        self._note_error(f"{side} refuses the bridge's key: {err.code}: {err.message}", False)

    def _accepted(self, side: str) -> None:
        if self._refused[side].is_set():
            log.info("the %s accepts the bridge's API key again; leasing resumes", side)
            self._refusal_logged.pop(side, None)
        self._refused[side].clear()

    def esp_beat(self, host: str, last_error: str | None) -> None:
        """Heartbeat the ESP; remember what it said, for the CRM heartbeat to relay."""
        view: dict[str, Any] = {"esp_reachable": True, "esp_error": None}
        try:
            paused = self.esp.heartbeat(
                self.config.worker_id, host=host, version=__version__, last_error=last_error
            )
            self._accepted("ESP")
            if paused != self._paused.is_set():
                log.info("the ESP's integration is %s", "paused" if paused else "running")
            (self._paused.set if paused else self._paused.clear)()
            view["esp_paused"] = paused
            view["esp_paused_at"] = None
            if paused:
                known = self._esp_view.get("esp_paused_at")
                view["esp_paused_at"] = known or self.esp.integration_page().get("paused_at")
        except (BridgeError, LeaseLostError) as exc:
            if isinstance(exc, BridgeError) and key_refused(exc):
                self.note_refusal("ESP", exc)
            else:
                log.warning("ESP heartbeat failed: %s", exc)
            code = exc.code
            message = exc.message if isinstance(exc, BridgeError) else str(exc)
            view.update(esp_reachable=False, esp_error=f"{code}: {message}"[:4000])
            view.setdefault("esp_paused", self._esp_view.get("esp_paused"))
            view.setdefault("esp_paused_at", self._esp_view.get("esp_paused_at"))
        self._esp_view = view

    def crm_beat(self, host: str, active: int, last_error: str | None, **extra: Any) -> None:
        try:
            self.crm.worker_heartbeat(
                self.config.worker_id,
                host=host,
                version=__version__,
                last_error=last_error,
                active=active,
                **self._esp_view,
                **extra,
            )
            self._accepted("CRM")
        except (BridgeError, LeaseLostError) as exc:
            if isinstance(exc, BridgeError) and key_refused(exc):
                self.note_refusal("CRM", exc)
            else:
                log.warning("CRM heartbeat failed: %s", exc)

    def refresh_if_due(self) -> None:
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

    def goodbye(self, last_error: str | None) -> None:
        """Tell the CRM this worker stopped cleanly (best effort)."""
        try:
            self.crm_beat(socket.gethostname(), 0, last_error, stopping=True)
        except Exception:  # never let a goodbye stop the stop
            log.debug("goodbye heartbeat failed", exc_info=True)
