"""A lease loop: lease a unit from the CRM (a long poll), run it, and again, backing off
while there is no work, and leasing nothing while the ESP is paused or a side refuses the
bridge's key. Units whose handler says so run on the :class:`SideLane` instead."""

from __future__ import annotations

import logging
import threading
import time

from mailshot.bridge.clients import CrmClient
from mailshot.bridge.config import BridgeConfig
from mailshot.bridge.errors import BridgeError, LeaseLostError
from mailshot.bridge.runner import UnitRunner
from mailshot.bridge.state import PoolState, Side, key_refused
from mailshot.bridge.units import on_side_lane
from mailshot.contracts.units import UnitPublic

log = logging.getLogger(__name__)


class SideLane:
    """Units run on threads of their own, at most ``slots`` at once, so the lease loop
    that leased one goes on leasing."""

    def __init__(self, runner: UnitRunner, slots: int) -> None:
        self._runner = runner
        self._slots = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()

    def try_run(self, unit: UnitPublic) -> bool:
        """Start ``unit`` on a side thread if a slot is free; False if none is."""
        if not self._slots.acquire(blocking=False):
            return False

        def side() -> None:
            try:
                with self._runner.state.working():
                    self._runner.run(unit)
            finally:
                self._slots.release()
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=side, name=f"bridge-prepare-{unit.job_id}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return True

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)


class LeaseLoop:
    """One lease loop of a pool (``small_only``: the express lane, which leases only the
    chunk and finalize units of one-chunk syncs)."""

    def __init__(
        self,
        config: BridgeConfig,
        crm: CrmClient,
        state: PoolState,
        runner: UnitRunner,
        side_lane: SideLane,
        *,
        n: int,
        small_only: bool = False,
    ) -> None:
        self.config = config
        self.crm = crm
        self.state = state
        self.runner = runner
        self.side_lane = side_lane
        self.worker_id = f"{config.worker_id}/{n}"
        self.small_only = small_only

    def run(self) -> None:
        config, state = self.config, self.state
        idle = config.lease_poll_seconds
        while not state.stop.is_set():
            if state.paused.is_set() or state.refused:
                # The health loop tries again and clears these when it may go on.
                state.stop.wait(max(config.lease_poll_seconds, 0.5))
                continue
            asked = time.monotonic()
            try:
                unit = self._lease()
            except _LeaseFailedError:
                state.stop.wait(config.idle_max_seconds)
                continue
            if unit is None:
                waited = time.monotonic() - asked
                if config.lease_wait_seconds and waited >= config.lease_wait_seconds / 2:
                    continue  # the CRM waited for work: ask again at once
                state.stop.wait(idle)
                # The express lane looks again soon: a small sync must not wait for it.
                most = config.lease_poll_seconds if self.small_only else config.idle_max_seconds
                idle = min(idle * 2, most)
                continue
            idle = config.lease_poll_seconds
            if on_side_lane(unit.kind) and self.side_lane.try_run(unit):
                continue
            with state.working():
                self.runner.run(unit)

    def _lease(self) -> UnitPublic | None:
        """The next unit, or None when there is none; a failed call is noted and raised."""
        try:
            return self.crm.lease(
                self.worker_id,
                small_only=self.small_only,
                wait_seconds=self.config.lease_wait_seconds,
            )
        except BridgeError as exc:
            if key_refused(exc):
                self.state.note_refusal(Side.CRM, exc)
            else:
                self.state.note_error(f"lease failed: {exc}")
        except LeaseLostError as exc:
            self.state.note_error(f"lease failed: {exc}")
        except Exception:  # a bug must not kill the loop
            log.exception("lease failed unexpectedly")
        raise _LeaseFailedError


class _LeaseFailedError(Exception):
    """The lease call failed (and was noted); the loop waits before asking again."""
