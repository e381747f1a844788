"""What every CRM page shares: the page size, the navigation, the integration banner, the
words for exclusion reasons, the ESP's name limit as the CRM last received it, and links
to the ESP's pages."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from mailshot.core.db.engine import read_only
from mailshot.core.webui.pages import NavItem
from mailshot.crm.services import esp_limits
from mailshot.crm.sync import integration

PAGE_SIZE = 50

#: Why a member of the source was left out of an audience, in words.
REASON_LABELS = {
    "unsubscribed": "Unsubscribed from the list",
    "opted_out": "Opted out (No Email)",
    "no_email_address": "No email address",
    "invalid_email": "Invalid email address",
    "no_consent": "No consent (GDPR mode)",
    "duplicate_email": "Duplicate email address",
}

NAV = (
    NavItem("Mailshots", "mailshots"),
    NavItem("People", "people"),
    NavItem("Mailing lists", "mailing_lists"),
    NavItem("Campaigns", "campaigns"),
    NavItem("Templates", "templates"),
    NavItem("Sync queue", "crm_sync_queue"),
    NavItem("API keys", "api_keys", admin_only=True),
    NavItem("Users", "users", admin_only=True),
    NavItem("Settings", "crm_settings", admin_only=True),
)


def esp_name_limit(db: Session) -> int | None:
    """The longest mailshot name the ESP accepts, as the bridge last reported it from
    ``GET /esp/api/v1/limits`` (None while the CRM has never heard): the pages keep no
    copy of the ESP's limits."""
    stored = esp_limits.load(db)
    return stored.campaign.name_max_length if stored is not None else None


def esp_page_url(request: Request, path: str) -> str:
    """A page of the ESP, as a user's browser reaches it: under ``public_esp_url``, else
    ``esp_url``, else ``/esp`` on this server (the embedded default)."""
    settings = request.app.state.settings
    base = settings.public_esp_url or settings.esp_url or "/esp"
    return f"{base.rstrip('/')}/{path.lstrip('/')}"


def integration_banner(request: Request) -> dict[str, Any]:
    """The banner shown on every page while no bridge worker has been heard from in the
    last 60 s (the sync queue's own view of the workers' heartbeats)."""
    with read_only(request.app.state.sessions) as s:
        health = integration.integration(s)
    last = health.last_heartbeat_at
    if health.running:
        return {"integration_last_seen": last}
    seen = f"last heard from at {last:%Y-%m-%d %H:%M:%S} UTC" if last else "never heard from"
    return {
        "integration_last_seen": last,
        "banner": {
            "kind": "warn",
            "title": "The integration is not running.",
            "message": f"No bridge worker has reported in the last 60 seconds ({seen}). "
            "Synchronise requests wait in the queue until one does.",
            "fix": "Start one with “mailshot worker” (or “mailshot serve”).",
        },
    }
