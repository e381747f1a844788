"""What can go wrong when the bridge calls the CRM or the ESP, sorted by what to do next.

Exception tree::

    BridgeError         a call failed; carries the other side's code, message and fix
      ├── TransientError  it may work later: refused or dropped connections, timeouts,
      │                   5xx, 429 Too Many Requests, 503 INTEGRATION_PAUSED, and a
      │                   401/403 refusal of the bridge's own key (a fault of the
      │                   integration, not of the mailshot: it waits, uncounted, until an
      │                   administrator fixes the key). The unit is retried with backoff
      │                   (honouring ``retry_after`` if given).
      └── PermanentError  it will not work until someone changes the mailshot: any other
                          4xx (the ESP refuses the campaign name...). The job fails at
                          once with that reason.
    LeaseLostError      the CRM says this worker no longer holds the unit (its lease
                        expired and was taken over, or its job ended): drop the unit
                        silently; whoever holds it now will finish it.
    BridgeConfigError   the bridge cannot start (no key, no URL).
"""

from __future__ import annotations


class BridgeError(Exception):
    def __init__(
        self, code: str, message: str, fix: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fix = fix
        self.status = status


class TransientError(BridgeError):
    def __init__(
        self,
        code: str,
        message: str,
        fix: str | None = None,
        status: int | None = None,
        *,
        retry_after: float | None = None,
        paused: bool = False,
        key_refused: bool = False,
    ) -> None:
        super().__init__(code, message, fix, status)
        self.retry_after = retry_after
        #: The ESP's integration is paused: wait, and do not count this as a failed try.
        self.paused = paused
        #: A side refused the bridge's key: wait for the fix, uncounted.
        self.key_refused = key_refused

    @property
    def counts_as_attempt(self) -> bool:
        """Whether this fault says something about the unit (not about the integration)."""
        return not (self.paused or self.key_refused)


class PermanentError(BridgeError):
    pass


class LeaseLostError(Exception):
    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


class BridgeConfigError(Exception):
    pass
