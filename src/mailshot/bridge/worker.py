"""The bridge's worker pool: the threads of one worker process. ``concurrency`` lease loops
and an express lane (:mod:`.lease_loop`), the side lane for prepare units, the health loop
(:mod:`.health`), the limits relay (:mod:`.limits`) and the sends relay (:mod:`.sends`),
over two typed clients and the state they share (:mod:`.state`); each unit is run by
:mod:`.runner` with its kind's handler (:mod:`.units`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import httpx

from mailshot.bridge import limits
from mailshot.bridge.clients import CrmClient, EspClient, make_http
from mailshot.bridge.config import BridgeConfig, default_worker_id
from mailshot.bridge.health import Health
from mailshot.bridge.lease_loop import LeaseLoop, SideLane
from mailshot.bridge.runner import UnitRunner
from mailshot.bridge.sends import SendRelay
from mailshot.bridge.state import PoolState
from mailshot.contracts.units import UnitPublic
from mailshot.core.settings import Settings

__all__ = ["BridgeConfig", "WorkerPool", "default_worker_id"]

log = logging.getLogger(__name__)


class WorkerPool:
    """``concurrency`` lease loops, the express lane, the health loop and the limits relay,
    in threads of this process."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        crm_http: httpx.Client | None = None,
        esp_http: httpx.Client | None = None,
    ) -> None:
        self.config = config
        timeout = config.http_timeout_seconds
        self.crm = CrmClient(crm_http or make_http(config.crm_url, config.crm_key, timeout))
        self.esp = EspClient(esp_http or make_http(config.esp_url, config.esp_key, timeout))
        self._clients_to_close = [
            c.http for c, given in ((self.crm, crm_http), (self.esp, esp_http)) if given is None
        ]
        self.state = PoolState(config.health_seconds)
        self.runner = UnitRunner(config, self.crm, self.esp, self.state)
        self.health = Health(config, self.crm, self.esp, self.state)
        self._side_lane = SideLane(self.runner, config.concurrency)
        self.send_relay = SendRelay(
            self.crm, self.esp, every=config.send_status_seconds, batch=config.send_status_batch
        )
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerPool:
        return cls(BridgeConfig.from_settings(settings, **overrides))

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        stop = self.state.stop
        stop.clear()
        targets: list[tuple[str, Callable[[], None]]] = [("bridge-health", self.health.run)]
        # The ESP's limits, for the CRM's preflight: now and every few minutes.
        relay = lambda: limits.relay_forever(self.esp.http, self.crm.http, stop)  # noqa: E731
        targets.append(("bridge-limits", relay))
        # The ESP's sends, for the CRM's mailshot pages: every few seconds.
        if self.config.send_status_seconds > 0:
            targets.append(("bridge-sends", lambda: self.send_relay.run(self.state)))
        for n in range(self.config.concurrency):
            targets.append((f"bridge-{n}", self._loop(n).run))
        # The express lane: one more loop that takes only one-chunk syncs' chunks and
        # finalize units, so a 100-recipient mailshot does not wait for a large chunk to finish.
        express = self._loop(self.config.concurrency, small_only=True)
        targets.append(("bridge-express", express.run))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "bridge started",
            extra={"worker_id": self.config.worker_id, "concurrency": self.config.concurrency},
        )

    def _loop(self, n: int, *, small_only: bool = False) -> LeaseLoop:
        return LeaseLoop(
            self.config,
            self.crm,
            self.state,
            self.runner,
            self._side_lane,
            n=n,
            small_only=small_only,
        )

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop leasing, let units in progress finish (up to ``timeout``); True if all did."""
        self.state.stop.set()
        per_thread = timeout / max(1, len(self._threads))
        for thread in self._threads:
            thread.join(timeout=per_thread)
        side = self._side_lane.threads()
        for thread in side:
            thread.join(timeout=per_thread)
        stopped = not any(t.is_alive() for t in (*self._threads, *side))
        if self._threads:
            self.health.goodbye()
        self._threads = []
        for client in self._clients_to_close:
            client.close()
        self._clients_to_close = []
        log.info("bridge stopped", extra={"worker_id": self.config.worker_id, "clean": stopped})
        return stopped

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly."""
        done = threading.Event()

        def _signalled(signum: int, _frame: Any) -> None:
            log.info("bridge received signal %s", signal.Signals(signum).name)
            done.set()

        previous = {s: signal.signal(s, _signalled) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            done.wait()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # ---- what the pool shows ------------------------------------------------------------
    def run_unit(self, unit: UnitPublic) -> None:
        """Do one leased unit and report the outcome; never raises."""
        self.runner.run(unit)

    @property
    def paused(self) -> bool:
        return self.state.paused.is_set()

    @property
    def refused(self) -> bool:
        """Whether the CRM or the ESP refuses the bridge's key (nothing is leased then)."""
        return self.state.refused

    @property
    def last_error(self) -> str | None:
        return self.state.last_error

    @property
    def counts(self) -> dict[str, int]:
        return self.state.counts
