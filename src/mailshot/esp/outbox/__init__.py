"""The Outbox: an SMTP capture server (aiosmtpd) that accepts every message and keeps it
in the ESP's database, for the embedded default where no SMTP relay is configured.
:func:`outbox_needed` is the one place that decides whether it runs."""

from __future__ import annotations

from typing import Any

__all__ = ["outbox_needed"]


def outbox_needed(settings: Any) -> bool:
    """Whether sends go to the Outbox: no SMTP relay is configured (``smtp_relays`` empty,
    or not a setting of this build)."""
    return not getattr(settings, "smtp_relays", None)
