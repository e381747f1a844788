"""One leased unit, start to end: its handler runs while a :class:`LeaseKeeper` heartbeats
it, then the outcome is reported to the CRM: complete, or fail (transient: retried later
with backoff; permanent: the job fails with the reason). A lost lease is dropped silently:
whoever holds it now finishes it, and every write is idempotent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.config import BridgeConfig
from mailshot.bridge.errors import BridgeError, LeaseLostError, PermanentError, TransientError
from mailshot.bridge.keeper import LeaseKeeper
from mailshot.bridge.state import PoolState, UnitResult
from mailshot.bridge.units import Done, handler_for
from mailshot.contracts.units import UnitPublic

log = logging.getLogger(__name__)

#: Quick retries of a completion or failure report (both are idempotent per lease token).
REPORT_RETRY_WAITS = (0.2, 0.5, 1.0)

T = TypeVar("T")


class UnitRunner:
    """Runs leased units for one pool and reports how each ended."""

    def __init__(
        self, config: BridgeConfig, crm: CrmClient, esp: EspClient, state: PoolState
    ) -> None:
        self.config = config
        self.crm = crm
        self.esp = esp
        self.state = state

    def run(self, unit: UnitPublic) -> None:
        """Do one leased unit and report the outcome; never raises."""
        interval = max(0.05, min(self.config.heartbeat_seconds, unit.lease_seconds / 3))
        log.debug("unit %s leased (attempt %s)", unit.describe(), unit.attempt)
        try:
            with LeaseKeeper(self.crm, unit, interval) as keeper:
                done = handler_for(unit.kind).work(self.crm, self.esp, unit, keeper.check)
            self._report(lambda: self._complete(unit, done))
            if done.note:
                log.info(done.note)
            self.state.count(UnitResult.DONE)
            log.debug("unit %s done", unit.describe())
        except LeaseLostError as lost:
            self.state.count(UnitResult.LOST)
            log.debug("unit %s dropped: %s", unit.describe(), lost.code)
        except TransientError as err:
            if err.paused:
                self.state.paused.set()
            self._fail(unit, err, permanent=False)
        except PermanentError as err:
            self._fail(unit, err, permanent=True)
        except Exception as exc:
            log.exception("unit %s failed unexpectedly", unit.describe())
            self._fail(unit, TransientError("BRIDGE_ERROR", f"{type(exc).__name__}: {exc}"), False)

    def _complete(self, unit: UnitPublic, done: Done) -> object:
        return self.crm.complete(
            unit,
            recipients_written=done.recipients_written,
            esp_campaign_id=done.esp_campaign_id,
            result=done.result,
        )

    def _report(self, send: Callable[[], T]) -> T | None:
        """Send a completion or failure report, retrying transient faults a few times."""
        for wait in (*REPORT_RETRY_WAITS, None):
            try:
                return send()
            except TransientError:
                if wait is None or self.state.stop.wait(wait):
                    raise
        return None

    def _fail(self, unit: UnitPublic, err: BridgeError, permanent: bool) -> None:
        retry_after = err.retry_after if isinstance(err, TransientError) else None
        counted = not isinstance(err, TransientError) or err.counts_as_attempt
        self.state.count(UnitResult.FAILED if permanent else UnitResult.RETRIED)
        self.state.note_error(f"{unit.describe()}: {err.code}: {err.message}", False)
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
        except (BridgeError, ValueError) as report_err:
            # The CRM is unreachable (or the report could not be made): the lease expires
            # and the unit is retried anyway.
            self.state.note_error(
                f"could not report {err.code} for {unit.describe()}: {report_err}"
            )
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
