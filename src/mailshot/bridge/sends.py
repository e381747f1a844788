"""The ESP's sends, relayed to the CRM: every ``send_status_seconds`` the bridge asks the
ESP for the sends changed since the feed cursor (``GET /esp/api/v1/sends?changed_after=``,
at most ``send_status_batch``) and hands them to the CRM with the cursor after them
(``PUT /crm/api/v1/integration/send-status``), which stores both in one transaction. The
cursor is the CRM's: it is read back at start and after any failure, so a bridge that
restarts (or another worker) resumes where the last stored batch ended. A full page is
followed at once by the next; the CRM keeps only reports newer than those it has, so a
page relayed twice changes nothing."""

from __future__ import annotations

import logging

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.errors import BridgeError, LeaseLostError
from mailshot.bridge.state import PoolState
from mailshot.contracts.sends import SendStatusBatch

log = logging.getLogger(__name__)


class SendRelay:
    """Relays changed sends from the ESP to the CRM, one bounded page a call."""

    def __init__(self, crm: CrmClient, esp: EspClient, *, every: float, batch: int = 100) -> None:
        self.crm = crm
        self.esp = esp
        self.every = every
        self.batch = batch
        self.cursor: str | None = None
        self._cursor_known = False
        self._failing = False

    def once(self) -> tuple[int, bool]:
        """Relay one page; answer how many sends it held and whether more may follow at
        once. Raises the bridge's errors when a side fails."""
        if not self._cursor_known:
            self.cursor = self.crm.send_feed_cursor()
            self._cursor_known = True
        page = self.esp.sends_changed(self.cursor, self.batch)
        if not page.items:
            return 0, False
        batch = SendStatusBatch(items=page.items, cursor=page.next_cursor)
        stored = self.crm.put_send_status(batch)
        if stored.unknown_mailshots:
            log.info(
                "the CRM has no mailshot for these sends' campaigns (deleted, or another CRM's)",
                extra={"mailshot_ids": stored.unknown_mailshots},
            )
        self.cursor = stored.cursor
        return len(page.items), page.more

    def run(self, state: PoolState) -> None:
        """Relay until the pool stops; while a side refuses the bridge's key, wait."""
        while not state.stop.is_set():
            wait = self.every
            if not state.refused:
                wait = self._step()
            if state.stop.wait(wait):
                return

    def _step(self) -> float:
        try:
            relayed, more = self.once()
        except (BridgeError, LeaseLostError) as exc:
            self._cursor_known = False  # read it back from the CRM when it answers again
            if not self._failing:
                log.warning("could not relay the ESP's sends to the CRM: %s", exc)
            self._failing = True
            return self.every
        except Exception:  # a bug must not kill the thread
            self._cursor_known = False
            log.exception("relaying the ESP's sends failed unexpectedly")
            return self.every
        if self._failing:
            log.info("the ESP's sends are relayed to the CRM again")
            self._failing = False
        if relayed:
            log.debug("relayed %d changed sends to the CRM", relayed)
        return 0.0 if more else self.every
