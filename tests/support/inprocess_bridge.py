"""The real bridge code in-process, for integration tests: a worker pool whose CRM and ESP
clients talk to the embedded app over its ASGI transport (holding the integration keys),
and a loop that works the queue dry as one worker of that pool would."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from mailshot.bridge.config import BridgeConfig
from mailshot.bridge.worker import WorkerPool
from tests.conftest import Keys


def in_process_pool(app: Any, keys: Keys, **tuning: Any) -> WorkerPool:
    """A worker pool on ``app`` (not started); ``tuning`` are further ``BridgeConfig``
    fields. Its HTTP clients are the caller's to close (``pool.crm.http``, ``pool.esp.http``)."""

    def http(part: str, key: str) -> TestClient:
        return TestClient(
            app,
            base_url=f"http://testserver/{part}",
            headers={"Authorization": f"Bearer {key}"},
        )

    config = BridgeConfig(
        crm_url="http://testserver/crm",
        crm_key=keys.crm_integration,
        esp_url="http://testserver/esp",
        esp_key=keys.esp_integration,
        **tuning,
    )
    return WorkerPool(
        config,
        crm_http=http("crm", keys.crm_integration),
        esp_http=http("esp", keys.esp_integration),
    )


def work_all(pool: WorkerPool) -> None:
    """Lease and run units until none is due, as one worker of the pool would."""
    for _ in range(100):
        unit = pool.crm.lease("test-worker")
        if unit is None:
            return
        pool.run_unit(unit)
    raise AssertionError("the queue never ran dry")
