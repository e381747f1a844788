"""The Outbox: an SMTP capture server (aiosmtpd) that accepts every message and keeps it
in the ESP's database, for the embedded default where no SMTP relay is configured.
:func:`outbox_needed` is the one place that decides whether it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailshot.core.settings import Settings

__all__ = ["outbox_needed"]


def outbox_needed(settings: Settings) -> bool:
    """Whether sends go to the Outbox: no SMTP relay is configured (``smtp_relays``)."""
    return not settings.smtp_relays
