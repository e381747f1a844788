"""The ESP's limits, relayed to the CRM: the bridge reads ``GET /esp/api/v1/limits`` and
hands the answer to ``PUT /crm/api/v1/integration/esp-limits``, so the CRM's preflight
checks a mailshot against what the ESP really accepts (the CRM hard-codes none of it).

:func:`relay_forever` does it when the worker pool starts and every
:data:`REFRESH_SECONDS` after; while either side is down it tries again every
:data:`RETRY_SECONDS`, and never stops the pool.
"""

from __future__ import annotations

import logging
import threading

import httpx

from mailshot.bridge.clients import CrmClient, EspClient
from mailshot.bridge.errors import BridgeError, LeaseLostError
from mailshot.contracts.limits import EspLimitsPut
from mailshot.core.clock import utcnow
from mailshot.core.web.types import JsonObject

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300.0
RETRY_SECONDS = 10.0


def relay(esp_http: httpx.Client, crm_http: httpx.Client) -> JsonObject:
    """Read the ESP's limits and store them in the CRM once; return what was read.
    Raises the bridge's errors (:mod:`mailshot.bridge.errors`) when a side fails."""
    read_at = utcnow()
    limits = EspClient(esp_http).limits()
    CrmClient(crm_http).put_esp_limits(EspLimitsPut(limits=limits, read_at=read_at))
    return limits


def relay_forever(
    esp_http: httpx.Client,
    crm_http: httpx.Client,
    stop: threading.Event,
    *,
    refresh_seconds: float = REFRESH_SECONDS,
    retry_seconds: float = RETRY_SECONDS,
) -> None:
    """Relay now, then every ``refresh_seconds`` (``retry_seconds`` after a failure),
    until ``stop`` is set."""
    while not stop.is_set():
        try:
            limits = relay(esp_http, crm_http)
        except (BridgeError, LeaseLostError) as exc:
            log.warning("could not relay the ESP's limits to the CRM: %s", exc)
            wait = retry_seconds
        except Exception:  # a bug must not kill the thread
            log.exception("relaying the ESP's limits failed unexpectedly")
            wait = retry_seconds
        else:
            campaign = limits.get("campaign") or {}
            log.info(
                "ESP limits relayed to the CRM",
                extra={"name_max_length": campaign.get("name_max_length")},
            )
            wait = refresh_seconds
        if stop.wait(wait):
            return
