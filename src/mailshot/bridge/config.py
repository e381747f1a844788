"""What a worker pool is given: the two parts' URLs and keys, and its tuning."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from mailshot.bridge.errors import BridgeConfigError
from mailshot.core.settings import Settings


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class BridgeConfig:
    """Everything a worker pool needs. Keys are never shown in its repr."""

    crm_url: str
    crm_key: str = field(repr=False)
    esp_url: str
    esp_key: str = field(repr=False)
    concurrency: int = 2
    lease_poll_seconds: float = 0.2
    idle_max_seconds: float = 0.5
    #: How long the CRM may hold a lease request that finds no work (a long poll: it
    #: answers as soon as a unit is queued). Units due with time alone (an expired lease,
    #: a retry's back-off) are seen within this. 0: poll with the back-off above instead.
    lease_wait_seconds: float = 1.0
    heartbeat_seconds: float = 5.0
    health_seconds: float = 5.0
    #: How often the health loop asks the CRM to queue the refreshes now due (0: never).
    refresh_seconds: float = 60.0
    #: How often the ESP's changed sends are relayed to the CRM (0: never), and at most
    #: how many a call.
    send_status_seconds: float = 3.0
    send_status_batch: int = 100
    http_timeout_seconds: float = 30.0
    worker_id: str = field(default_factory=default_worker_id)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BridgeConfig:
        """Keys from the settings, else from the provisioned credentials file."""
        from mailshot.core import credentials

        creds = credentials.load(settings.credentials_file)
        crm_key = settings.bridge_crm_key or creds.crm_integration_key
        esp_key = settings.bridge_esp_key or creds.esp_integration_key
        if crm_key is None or esp_key is None:
            missing = "CRM" if crm_key is None else "ESP"
            raise BridgeConfigError(
                f"The bridge has no {missing} API key: set MAILSHOT_BRIDGE_{missing}_KEY, "
                f"or run `mailshot serve` once so it provisions {settings.credentials_file}."
            )
        values: dict[str, Any] = {
            "crm_url": settings.crm_base_url(),
            "crm_key": crm_key.get_secret_value(),
            "esp_url": settings.esp_base_url(),
            "esp_key": esp_key.get_secret_value(),
            "concurrency": settings.worker_concurrency,
            "heartbeat_seconds": settings.heartbeat_seconds,
            "health_seconds": settings.heartbeat_seconds,
        }
        values.update(overrides)
        return cls(**values)
