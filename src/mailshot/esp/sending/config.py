"""What sending takes from the settings: the relays mail goes out through
(:func:`effective_relays`: the configured ones, or the embedded Outbox capture server), the
send's context (tracking base, bounce and Message-ID domains, the signing secret) and the
DKIM key."""

from __future__ import annotations

from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

from mailshot.core.settings import Settings
from mailshot.core.webui.secret import load_or_create
from mailshot.esp.sending.dkim import Algorithm, DkimConfig
from mailshot.esp.sending.model import SendContext
from mailshot.esp.sending.relays import RelaySettings, Security

SECRET_FILE = "sending-secret"  # noqa: S105  # a file name
OUTBOX_RELAY = "outbox"


def effective_relays(settings: Settings) -> list[RelaySettings]:
    """``smtp_relays``, or one relay named ``outbox``: the Outbox capture server at
    ``outbox_smtp_host:outbox_smtp_port``, plain SMTP, no authentication."""
    if settings.smtp_relays:
        return list(settings.smtp_relays)
    return [
        RelaySettings(
            name=OUTBOX_RELAY,
            host=settings.outbox_smtp_host,
            port=settings.outbox_smtp_port or 2525,
            security=Security.NONE,
            local_hostname="mailshot.localhost",
        )
    ]


def tracking_base(settings: Settings) -> str:
    """The ESP's public base URL: tracking links, the pixel and unsubscribe hang off it."""
    return (settings.public_esp_url or settings.esp_base_url()).rstrip("/")


def bounce_domain(settings: Settings) -> str:
    if settings.bounce_domain:
        return settings.bounce_domain
    host = urlsplit(tracking_base(settings)).hostname or "localhost"
    return "localhost" if host.replace(".", "").isdigit() or ":" in host else host


def sending_secret(settings: Settings) -> bytes:
    if settings.sending_secret is not None:
        return settings.sending_secret.get_secret_value().encode()
    return load_or_create(settings.data_dir, SECRET_FILE).encode()


def dkim_configured(settings: Settings) -> bool:
    return bool(settings.dkim_domain and settings.dkim_selector and settings.dkim_private_key_file)


def dkim_config(settings: Settings) -> DkimConfig | None:
    """The DKIM key of the settings, or None when none is configured; raises OSError when
    the key file cannot be read."""
    if not dkim_configured(settings):
        return None
    pem = Path(cast(Path, settings.dkim_private_key_file)).read_bytes()
    return DkimConfig(
        domain=cast(str, settings.dkim_domain),
        selector=cast(str, settings.dkim_selector),
        private_key_pem=pem,
        algorithm=cast(Algorithm, settings.dkim_algorithm),
    )


def send_context(settings: Settings, send_id: int, secret: bytes | None = None) -> SendContext:
    """The context one send's messages are compiled with."""
    bounce = bounce_domain(settings)
    return SendContext(
        send_id=send_id,
        tracking_base_url=tracking_base(settings),
        bounce_domain=bounce,
        message_id_domain=settings.message_id_domain or bounce,
        secret=secret if secret is not None else sending_secret(settings),
        dkim=dkim_config(settings),
    )
