"""The bridge's worker pool: ``concurrency`` lease loops in threads (and an express lane
for small syncs), each leasing one unit from the CRM, doing it against the ESP and
reporting the outcome; a health loop (:mod:`mailshot.bridge.health`) beside them."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from mailshot.bridge import limits
from mailshot.bridge.clients import CrmClient, EspClient, Unit, make_http
from mailshot.bridge.config import BridgeConfig
from mailshot.bridge.errors import (
    BridgeError,
    LeaseLostError,
    PermanentError,
    TransientError,
)
from mailshot.bridge.health import Health, key_refused
from mailshot.bridge.lease_keeper import LeaseKeeper
from mailshot.bridge.suppressed import relay_suppressed
from mailshot.core.settings import Settings

__all__ = ["BridgeConfig", "WorkerPool"]  # BridgeConfig: for callers of one module

log = logging.getLogger(__name__)

#: Quick retries of a completion or failure report (both are idempotent per lease token).
_REPORT_RETRY_WAITS = (0.2, 0.5, 1.0)


class WorkerPool:
    """``concurrency`` lease loops and one health loop, in threads of this process."""

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
        self._stop = threading.Event()
        self.health = Health(config, self.crm, self.esp, self._note_error)
        self._threads: list[threading.Thread] = []
        #: Prepare units run on side threads (at most ``concurrency`` at once): a prepare
        #: mostly waits while the CRM snapshots the audience, and must not hold a lease
        #: loop that could be serving a small sync meanwhile.
        self._prepare_slots = threading.BoundedSemaphore(config.concurrency)
        self._side_threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._active = 0
        self.last_error: str | None = None
        self.counts = {"done": 0, "retried": 0, "failed": 0, "lost": 0}

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WorkerPool:
        return cls(BridgeConfig.from_settings(settings, **overrides))

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        targets: list[tuple[str, Callable[[], None]]] = [("bridge-health", self._health_loop)]
        # The ESP's limits, for the CRM's preflight: now and every few minutes.
        relay = lambda: limits.relay_forever(self.esp.http, self.crm.http, self._stop)  # noqa: E731
        targets.append(("bridge-limits", relay))
        for n in range(self.config.concurrency):
            targets.append((f"bridge-{n}", lambda n=n: self._lease_loop(n)))  # type: ignore[misc]
        # The express lane: one more loop that takes only one-chunk syncs' chunks and
        # finalize units, so a 100-recipient mailshot does not wait for a large chunk to finish.
        express = self.config.concurrency
        targets.append(("bridge-express", lambda: self._lease_loop(express, small_only=True)))
        for name, target in targets:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info(
            "bridge started",
            extra={"worker_id": self.config.worker_id, "concurrency": self.config.concurrency},
        )

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop leasing, let units in progress finish (up to ``timeout``); True if all did."""
        self._stop.set()
        per_thread = timeout / max(1, len(self._threads))
        for thread in self._threads:
            thread.join(timeout=per_thread)
        with self._lock:
            side = list(self._side_threads)
        for thread in side:
            thread.join(timeout=per_thread)
        stopped = not any(t.is_alive() for t in (*self._threads, *side))
        if self._threads:
            self.health.goodbye(self.last_error)
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

    @property
    def paused(self) -> bool:
        return self.health.paused

    @property
    def refused(self) -> bool:
        """Whether the CRM or the ESP refuses the bridge's key (nothing is leased then)."""
        return self.health.refused

    # ---- the loops ----------------------------------------------------------------------
    def _health_loop(self) -> None:
        host = socket.gethostname()
        while True:
            with self._lock:
                active, last_error = self._active, self.last_error
            self.health.esp_beat(host, last_error)
            self.health.crm_beat(host, active, last_error)
            self.health.refresh_if_due()
            if self._stop.wait(self.config.health_seconds):
                return

    def _lease_loop(self, n: int, small_only: bool = False) -> None:
        worker_id = f"{self.config.worker_id}/{n}"
        idle = self.config.lease_poll_seconds
        while not self._stop.is_set():
            if self.health.paused:
                self._stop.wait(max(self.config.lease_poll_seconds, 0.5))
                continue
            if self.refused:  # the health loop tries again and clears it when accepted
                self._stop.wait(max(self.config.lease_poll_seconds, 0.5))
                continue
            asked = time.monotonic()
            try:
                unit = self.crm.lease(
                    worker_id, small_only=small_only, wait_seconds=self.config.lease_wait_seconds
                )
            except BridgeError as exc:
                if key_refused(exc):
                    self.health.note_refusal("CRM", exc)
                else:
                    self._note_error(f"lease failed: {exc}")
                self._stop.wait(self.config.idle_max_seconds)
                continue
            except LeaseLostError as exc:
                self._note_error(f"lease failed: {exc}")
                self._stop.wait(self.config.idle_max_seconds)
                continue
            except Exception:  # a bug must not kill the loop
                log.exception("lease failed unexpectedly")
                self._stop.wait(self.config.idle_max_seconds)
                continue
            if unit is None:
                waited = time.monotonic() - asked
                if self.config.lease_wait_seconds and waited >= self.config.lease_wait_seconds / 2:
                    continue  # the CRM waited for work: ask again at once
                self._stop.wait(idle)
                # The express lane looks again soon: a small sync must not wait for it.
                most = (
                    self.config.lease_poll_seconds if small_only else self.config.idle_max_seconds
                )
                idle = min(idle * 2, most)
                continue
            idle = self.config.lease_poll_seconds
            if unit.kind == "prepare" and self._prepare_slots.acquire(blocking=False):
                self._run_on_side(unit)
                continue
            self._run_counted(unit)

    def _run_counted(self, unit: Unit) -> None:
        with self._lock:
            self._active += 1
        try:
            self.run_unit(unit)
        finally:
            with self._lock:
                self._active -= 1

    def _run_on_side(self, unit: Unit) -> None:
        """Run a prepare unit on a thread of its own; the lease loop goes on leasing."""

        def side() -> None:
            try:
                self._run_counted(unit)
            finally:
                self._prepare_slots.release()
                with self._lock:
                    self._side_threads.discard(threading.current_thread())

        thread = threading.Thread(target=side, name=f"bridge-prepare-{unit.job_id}", daemon=True)
        with self._lock:
            self._side_threads.add(thread)
        thread.start()

    def _note_error(self, text: str, show: bool = True) -> None:
        """Remember the last error (both heartbeats report it); log it if ``show``."""
        with self._lock:
            self.last_error = text[:1000]
        if show:
            log.warning(text)

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    # ---- one unit -----------------------------------------------------------------------
    def run_unit(self, unit: Unit) -> None:
        """Do one leased unit and report the outcome; never raises."""
        interval = max(0.05, min(self.config.heartbeat_seconds, unit.lease_seconds / 3))
        log.debug("unit %s leased (attempt %s)", unit.describe(), unit.attempt)
        keeper = LeaseKeeper(self.crm, unit, interval)
        try:
            with keeper:
                report = self._work(unit, keeper)
            self._report(report)
            self._count("done")
            log.debug("unit %s done", unit.describe())
        except LeaseLostError as lost:
            self._count("lost")
            log.debug("unit %s dropped: %s", unit.describe(), lost.code)
        except TransientError as err:
            if err.paused:
                self.health.pause()
            self._fail(unit, err, permanent=False)
        except PermanentError as err:
            self._fail(unit, err, permanent=True)
        except Exception as exc:
            log.exception("unit %s failed unexpectedly", unit.describe())
            self._fail(unit, TransientError("BRIDGE_ERROR", f"{type(exc).__name__}: {exc}"), False)

    def _work(self, unit: Unit, keeper: LeaseKeeper) -> Callable[[], Any]:
        """Do the unit's work; return the (not yet sent) completion report."""
        if unit.kind == "prepare":
            # The ESP campaign first (a name the ESP refuses fails before any snapshot),
            # then the snapshot, whose chunks other workers write while it is taken.
            fields = self.crm.campaign_fields(unit)
            keeper.check()
            body = {
                "snapshot": fields["snapshot"],
                "crm_mailshot_uid": fields["crm_mailshot_uid"],
                **{
                    k: fields.get(k)
                    for k in (
                        "name",
                        "subject",
                        "from_name",
                        "from_address",
                        "reply_to",
                        "html",
                        "text",
                    )
                },
            }
            campaign = self.esp.put_campaign(unit.mailshot_id, body)
            keeper.check()
            self.crm.prepare(unit)
            keeper.check()
            return lambda: self.crm.complete(unit, esp_campaign_id=str(campaign["id"]))
        if unit.kind == "chunk":
            assert unit.first_seq is not None and unit.last_seq is not None
            # The chunk goes from the CRM to the ESP as bytes, never parsed here.
            chunk = self.crm.recipients_raw(unit.job_id, unit.first_seq, unit.last_seq)
            keeper.check()
            written = self.esp.post_recipients_raw(unit.mailshot_id, unit.job_id, chunk)
            keeper.check()
            n = int(written.get("written", unit.last_seq - unit.first_seq + 1))
            return lambda: self.crm.complete(unit, recipients_written=n)
        if unit.kind == "finalize":
            result = self.esp.finalize(unit.mailshot_id, unit.job_id, unit.recipients_total or 0)
            keeper.check()
            if int(result.get("suppressed_count") or 0) > 0:
                relay_suppressed(self.crm, self.esp, unit, keeper.check)

            def finish() -> Any:
                out = self.crm.complete(unit, result=result)
                log.info(
                    "sync job %s of mailshot %s completed: %s recipients",
                    unit.job_id,
                    unit.mailshot_id,
                    result.get("audience_count", unit.recipients_total),
                )
                return out

            return finish
        raise PermanentError(
            "BRIDGE_UNKNOWN_UNIT", f"The bridge does not know units of kind {unit.kind}."
        )

    def _report(self, send: Callable[[], Any]) -> Any:
        """Send a completion or failure report, retrying transient faults a few times."""
        for wait in (*_REPORT_RETRY_WAITS, None):
            try:
                return send()
            except TransientError:
                if wait is None or self._stop.wait(wait):
                    raise
        return None

    def _fail(self, unit: Unit, err: BridgeError, permanent: bool) -> None:
        retry_after = err.retry_after if isinstance(err, TransientError) else None
        counted = not isinstance(err, TransientError) or err.counts_as_attempt
        self._count("failed" if permanent else "retried")
        self._note_error(f"{unit.describe()}: {err.code}: {err.message}", False)
        try:
            self._report(
                lambda: self.crm.fail(
                    unit,
                    permanent=permanent,
                    code=err.code,
                    message=err.message,
                    fix=err.fix,
                    retry_after_seconds=retry_after,
                    counts_as_attempt=counted,
                )
            )
        except LeaseLostError:
            log.debug("unit %s: job ended before its failure was reported", unit.describe())
            return
        except BridgeError as report_err:
            # The CRM is unreachable: the lease expires and the unit is retried anyway.
            self._note_error(f"could not report {err.code} for {unit.describe()}: {report_err}")
            return
        if permanent:
            log.info(
                "sync job %s of mailshot %s failed: %s: %s",
                unit.job_id,
                unit.mailshot_id,
                err.code,
                err.message,
            )
        else:
            log.debug("unit %s will be retried: %s", unit.describe(), err)
