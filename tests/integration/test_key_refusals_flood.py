"""A flood of refused requests is counted, not written row by row: the rows of
``key_refusals`` stay few while their counts add up to every refused request exactly (also
when two processes' apps record into one database at once), the table is written at most
about once a second whatever the flood, rows past the retention are deleted, and the API
and the page show the counts."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, insert, select

from mailshot.app.server import create_app
from mailshot.core.access import refusals as keyrefusals
from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.settings import Settings
from mailshot.crm.models import KeyRefusalRecord
from mailshot.esp.models import EspKeyRefusal
from tests.conftest import Keys
from tests.support.ui_support import PageUsers, make_page_users, sign_in


@dataclass
class Side:
    name: str
    admin: str
    model: Any
    probe: str

    def url(self, path: str) -> str:
        return f"/{self.name}/api/v1/{path}"

    def db_url(self, settings: Settings) -> str:
        return settings.crm_db_url() if self.name == "crm" else settings.esp_db_url()


@pytest.fixture(params=["crm", "esp"])
def side(request: pytest.FixtureRequest, keys: Keys) -> Side:
    if request.param == "crm":
        return Side("crm", keys.crm_admin, KeyRefusalRecord, "mailshots")
    return Side("esp", keys.esp_admin, EspKeyRefusal, "campaigns")


def _rows(settings: Settings, side: Side) -> list[Any]:
    engine = make_unpooled_engine(side.db_url(settings))
    with make_sessionmaker(engine)() as s:
        rows = list(s.scalars(select(side.model).order_by(side.model.id)))
    engine.dispose()
    return rows


class Writes:
    """Counts the transactions that write ``key_refusals`` through an engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    def _statement(self, conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO KEY_REFUSALS"):
            conn.info["writes_refusals"] = True

    def _commit(self, conn: Any) -> None:
        if conn.info.pop("writes_refusals", False):
            self.count += 1

    def __enter__(self) -> Writes:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


def test_a_flood_of_refusals_makes_few_rows_and_exact_counts(
    client: TestClient, side: Side, settings: Settings
) -> None:
    admin = {"Authorization": f"Bearer {side.admin}"}
    me = next(u for u in client.get(side.url("users"), headers=admin).json()["items"])
    disabled = client.post(
        side.url("api-keys"),
        headers=admin,
        json={"name": "off", "user_id": me["id"], "enabled": False},
    ).json()
    part = client.app.state.crm if side.name == "crm" else client.app.state.esp  # type: ignore[attr-defined]
    per_reason = 150
    probe = side.url(side.probe)
    with Writes(part.state.engine) as writes:
        started = time.monotonic()
        for _ in range(per_reason):
            assert client.get(probe).status_code == 401
            assert client.get(probe, headers={"Authorization": "Bearer nope"}).status_code == 401
            r = client.get(probe, headers={"Authorization": f"Bearer {disabled['token']}"})
            assert r.json()["error"]["code"] == "AUTH_KEY_DISABLED"
        took = time.monotonic() - started
        # This process's tally is written before the read.
        listed = client.get(side.url("key-refusals"), headers=admin).json()["items"]

    counts: dict[str, int] = {}
    for row in listed:
        counts[row["reason"]] = counts.get(row["reason"], 0) + row["count"]
    assert counts == {
        "AUTH_MISSING": per_reason,
        "AUTH_MALFORMED": per_reason,
        "AUTH_KEY_DISABLED": per_reason,
    }
    stored = _rows(settings, side)
    # One row per reason (per minute: the flood may straddle two).
    assert len(stored) <= 6, [(r.reason, r.bucket, r.count) for r in stored]
    assert sum(r.count for r in stored) == 3 * per_reason
    off = next(r for r in listed if r["reason"] == "AUTH_KEY_DISABLED")
    assert off["key_prefix"] == disabled["prefix"] and off["key_name"] == "off"
    assert off["path"] == probe and off["client_ip"] == "testclient"
    assert off["first_at"] <= off["at"]
    # The table was written about once a second, not once a refusal.
    assert 1 <= writes.count <= took / keyrefusals.FLUSH_SECONDS + 3, (writes.count, took)


def test_distinct_paths_cannot_make_rows_without_bound(
    client: TestClient, side: Side, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyrefusals, "GROUPS_PER_BUCKET", 20)
    for n in range(120):
        assert client.get(side.url(f"{side.probe}/{n}")).status_code == 401
    listed = client.get(
        side.url("key-refusals"),
        headers={"Authorization": f"Bearer {side.admin}"},
        params={"limit": 500},
    ).json()["items"]
    stored = _rows(settings, side)
    buckets = {r.bucket for r in stored}
    assert len(stored) <= len(buckets) * (20 + 1)
    assert sum(r.count for r in stored) == 120 == sum(r["count"] for r in listed)
    rest = [r for r in listed if r["path"] is None]
    assert rest and all(r["reason"] == "AUTH_MISSING" for r in rest)


def test_two_processes_add_up_in_the_same_rows(side: Side, settings: Settings) -> None:
    """Two apps on one database (as two processes would be) flood at once: every refusal
    is counted once."""
    per_app = 150
    apps = [TestClient(create_app(settings)), TestClient(create_app(settings))]
    failures: list[BaseException] = []

    def flood(c: TestClient) -> None:
        try:
            for _ in range(per_app):
                assert c.get(side.url(side.probe)).status_code == 401
        except BaseException as exc:
            failures.append(exc)

    with apps[0], apps[1]:
        for c in apps:  # one request each first: FastAPI builds its routes on first use
            assert c.get(side.url(side.probe)).status_code == 401
        threads = [threading.Thread(target=flood, args=(c,)) for c in apps]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # Leaving the apps (their shutdown) wrote what each still held.
    assert failures == []
    stored = _rows(settings, side)
    assert sum(r.count for r in stored) == 2 * per_app + 2
    assert len(stored) <= 2  # one group, in at most two minutes
    assert {(r.reason, r.path) for r in stored} == {("AUTH_MISSING", side.url(side.probe))}


def test_rows_past_the_retention_are_deleted(settings: Settings, side: Side, keys: Keys) -> None:
    old_at = utcnow() - timedelta(days=31)
    engine = make_unpooled_engine(side.db_url(settings))
    with make_sessionmaker(engine)() as s, s.begin():
        s.execute(
            insert(side.model).values(
                at=old_at,
                first_at=old_at,
                count=5,
                bucket=keyrefusals.bucket_of(old_at),
                fingerprint="0" * 64,
                reason="AUTH_MISSING",
                path="/old",
            )
        )
    engine.dispose()
    short = settings.model_copy(update={"key_refusal_retention_days": 30})
    with TestClient(create_app(short)) as c:
        assert c.get(side.url(side.probe)).status_code == 401
    assert [(r.path, r.count) for r in _rows(settings, side)] == [(side.url(side.probe), 1)]


def test_the_keys_page_shows_the_counts(client: TestClient, settings: Settings, keys: Keys) -> None:
    users: PageUsers = make_page_users(settings)
    for _ in range(7):
        client.get("/crm/api/v1/mailshots", headers={"Authorization": "Bearer mscrm_x_y"})
    sign_in(client, "crm", users.crm_admin)
    page = client.get("/crm/api-keys")
    unknown = [r for r in page.context["refusals"] if r.reason == "AUTH_UNKNOWN_KEY"]  # type: ignore[attr-defined]
    assert sum(r.count for r in unknown) == 7
    assert "<td>7</td>" in page.text


def test_the_count_of_stored_rows_is_what_the_api_lists(
    client: TestClient, side: Side, settings: Settings
) -> None:
    for _ in range(3):
        client.get(side.url(side.probe))
    listed = client.get(
        side.url("key-refusals"), headers={"Authorization": f"Bearer {side.admin}"}
    ).json()["items"]
    engine = make_unpooled_engine(side.db_url(settings))
    with make_sessionmaker(engine)() as s:
        total = s.scalar(select(func.sum(side.model.count)))
    engine.dispose()
    assert total == 3 == sum(r["count"] for r in listed)
