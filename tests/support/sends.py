"""Helpers for the send tests: settings pointing at a test SMTP server, a finalised
campaign made through the ESP API, and running send workers until a send is over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from mailshot.app.server import create_app
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.settings import Settings
from mailshot.esp.sending.runner import run_until_idle
from tests.support.aio import in_thread
from tests.support.sending import relay

COLUMNS = ["seq", "person_id", "email", "first_name", "last_name", "organisation_id"]
FINAL = {"sent", "cancelled", "failed"}


def send_settings(settings: Settings, port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_relays": [relay(port, connections=2)],
        "send_batch_size": 25,
        "send_window": 10,
        "send_retry_initial_seconds": 0.05,
        "send_retry_max_seconds": 0.2,
        "public_esp_url": "https://esp.example.test/esp",
        "bounce_domain": "bounces.example.test",
        "lease_seconds": 2.0,
        "heartbeat_seconds": 0.5,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@contextmanager
def esp_client(settings: Settings, token: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        client.base_url = client.base_url.join("/esp/api/v1/")
        yield client


def campaign(
    esp: TestClient,
    mailshot: int,
    people: list[tuple[str, str]],
    *,
    finalize: bool = True,
    **fields: Any,
) -> int:
    """A campaign of CRM mailshot ``mailshot`` whose audience is ``people`` (email, first
    name); finalised unless asked not to. Answers the ESP campaign id."""
    body = {
        "crm_mailshot_uid": f"00000000-0000-4000-8000-{mailshot:012d}",
        "name": f"Campaign {mailshot}",
        "subject": "Hello {{ first_name | default('there') }}",
        "from_name": "Acme",
        "from_address": "news@example.com",
        "html": '<p>Hi {{ first_name }}, <a href="https://example.com/offer">offer</a></p>',
        "snapshot": 1,
        **fields,
    }
    resp = esp.put(f"integrated-campaigns/{mailshot}", json=body)
    assert resp.status_code == 200, resp.text
    rows = [[i, 1000 + i, email, name, "", None] for i, (email, name) in enumerate(people)]
    for first in range(0, len(rows), 500):
        resp = esp.post(
            f"integrated-campaigns/{mailshot}/recipients",
            json={"snapshot": 1, "columns": COLUMNS, "rows": rows[first : first + 500]},
        )
        assert resp.status_code == 200, resp.text
    if finalize:
        resp = esp.post(
            f"integrated-campaigns/{mailshot}/finalize", json={"snapshot": 1, "expected": len(rows)}
        )
        assert resp.status_code == 200, resp.text
    return int(resp.json()["id"]) if finalize else 0


def people(n: int, domain: str = "example.org") -> list[tuple[str, str]]:
    return [(f"p{i}@{domain}", f"Name{i}") for i in range(n)]


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    return make_sessionmaker(make_engine(settings.esp_db_url()))


def drain(
    esp: TestClient,
    settings: Settings,
    send_id: int,
    *,
    until: set[str] = FINAL,
    timeout: float = 30,
) -> dict[str, Any]:
    """Run send workers until the send is in one of ``until`` (deferred retries included)."""
    sessions = sessions_for(settings)
    deadline = time.monotonic() + timeout
    try:
        while True:
            in_thread(run_until_idle, sessions, settings)
            send = esp.get(f"sends/{send_id}").json()
            if send["state"] in until:
                return dict(send)
            assert time.monotonic() < deadline, send
            time.sleep(0.05)
    finally:
        engine = sessions.kw["bind"]
        engine.dispose()


def ledger(esp: TestClient, send_id: int, state: str | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if state:
            params["state"] = state
        if cursor:
            params["cursor"] = cursor
        page = esp.get(f"sends/{send_id}/recipients", params=params).json()
        out += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out
