"""A sync under faults, end to end: workers killed mid-sync, an ESP that fails a share of
requests, a small sync while a big one runs, and two workers sharing the queue."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from itertools import pairwise

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mailshot.core.settings import Settings
from mailshot.crm.models.sync import SyncLeaseLog
from tests.conftest import Keys
from tests.e2e.conftest import Crm, ServerFactory, WorkerFactory, free_port
from tests.support.e2e_data import add_list, add_mailshot, crm_engine, esp_audience

pytestmark = pytest.mark.e2e


def _assert_exact(settings: Settings, mailshot_id: int, emails: set[str]) -> None:
    got = esp_audience(settings, mailshot_id)
    assert len(got) == len(set(got)), "a recipient is in the ESP campaign twice"
    missing, extra = emails - set(got), set(got) - emails
    assert not missing and not extra, (len(missing), len(extra))


def test_workers_killed_mid_sync_lose_and_duplicate_nothing(
    start_server: ServerFactory, start_worker: WorkerFactory, keys: Keys, settings: Settings
) -> None:
    timing = {"lease_seconds": 2, "heartbeat_seconds": 0.5}
    server = start_server(chunk_size=1000, **timing)
    engine = crm_engine(settings)
    list_id, emails = add_list(engine, "kill", 20_000)
    mailshot = add_mailshot(engine, list_id, "Survives kills")
    engine.dispose()
    crm = Crm(server, keys)
    rng = random.Random(20_000)
    steady = start_worker(server, **timing)
    for trial in range(3):
        victim = start_worker(server, **timing)
        crm.synchronise(mailshot)
        time.sleep(rng.uniform(0.3, 1.5))
        victim.kill()
        if trial == 1:  # once, kill both: only the lease expiry can save the sync
            steady.kill()
            steady = start_worker(server, **timing)
        end = crm.wait([mailshot], timeout=60)[mailshot]
        assert end["state"] == "synchronised", end
        assert end["recipients_synced"] == 20_000
        _assert_exact(settings, mailshot, emails)


# ---- a fault-injecting proxy in front of the ESP ------------------------------------------
class FaultyProxy:
    """Forwards to the real ESP; answers a share of the bridge's writes with 500, 429 +
    Retry-After: 1, or forwards them only after the worker has given up waiting."""

    def __init__(self, upstream: str, delay: float, seed: int = 7) -> None:
        self.upstream = upstream
        self.delay = delay
        self.rng = random.Random(seed)
        self.faults = {"500": 0, "429": 0, "slow": 0, "ok": 0}
        self.port = free_port()
        app = Starlette(
            routes=[Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT", "DELETE"])]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        draw = self.rng.random()
        faulty = "/integrated-campaigns/" in request.url.path
        if faulty and draw < 0.12:
            self.faults["500"] += 1
            return Response(b'{"error": {"code": "UPSTREAM_BROKE", "message": "x"}}', 500)
        if faulty and draw < 0.22:
            self.faults["429"] += 1
            return Response(b"slow down", 429, headers={"Retry-After": "1"})
        if faulty and draw < 0.27:
            self.faults["slow"] += 1
            await asyncio.sleep(self.delay)
        else:
            self.faults["ok"] += 1
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type")
        }
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(
                request.method,
                f"{self.upstream}{request.url.path}",
                params=request.query_params,
                content=body,
                headers=headers,
            )
        keep = {
            k: v for k, v in answer.headers.items() if k.lower() in ("content-type", "retry-after")
        }
        return Response(answer.content, answer.status_code, headers=keep)

    def __enter__(self) -> FaultyProxy:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def faulty_proxy_factory() -> Iterator[list[FaultyProxy]]:
    made: list[FaultyProxy] = []
    yield made
    for proxy in made:
        proxy.__exit__()


def test_an_esp_that_fails_a_share_of_requests_still_gets_everything_once(
    start_server: ServerFactory,
    start_worker: WorkerFactory,
    keys: Keys,
    settings: Settings,
    faulty_proxy_factory: list[FaultyProxy],
) -> None:
    server = start_server(chunk_size=40)
    engine = crm_engine(settings)
    lists = [add_list(engine, f"f{i}", 50 + 10 * i) for i in range(4)]
    mailshots = [(add_mailshot(engine, *lists[i % 4][:1], f"Faulty {i}"), i % 4) for i in range(12)]
    engine.dispose()
    proxy = FaultyProxy(server.url, delay=2.5).__enter__()
    faulty_proxy_factory.append(proxy)
    crm = Crm(server, keys)
    for m, _ in mailshots:
        crm.synchronise(m)
    start_worker(server, esp_url=f"{proxy.url}/esp", args=("--concurrency", "4", "--timeout", "2"))
    ended = crm.wait([m for m, _ in mailshots], timeout=150)
    assert proxy.faults["500"] and proxy.faults["429"] and proxy.faults["slow"]
    for m, i in mailshots:
        assert ended[m]["state"] == "synchronised", ended[m]
        _assert_exact(settings, m, lists[i][1])
    assert sum(ended[m]["attempts"] for m, _ in mailshots) > 0


def test_a_small_sync_overtakes_a_big_one(
    start_server: ServerFactory, start_worker: WorkerFactory, keys: Keys, settings: Settings
) -> None:
    server = start_server(chunk_size=2000)
    engine = crm_engine(settings)
    big_list, big_emails = add_list(engine, "big", 80_000)
    small_list, small_emails = add_list(engine, "small", 100)
    big = add_mailshot(engine, big_list, "Big")
    small = add_mailshot(engine, small_list, "Small")
    engine.dispose()
    crm = Crm(server, keys)
    start_worker(server)
    crm.synchronise(big)
    deadline = time.monotonic() + 60
    while crm.status(big)["chunks_done"] < 2:  # the big one is well under way
        assert time.monotonic() < deadline
        time.sleep(0.05)
    crm.synchronise(small)
    small_end = crm.wait([small], timeout=60)[small]
    big_now = crm.status(big)
    assert small_end["state"] == "synchronised"
    assert big_now["state"] == "synchronising", "the small sync should finish first"
    big_end = crm.wait([big], timeout=120)[big]
    assert big_end["state"] == "synchronised"
    assert small_end["finished_at"] < big_end["finished_at"]
    _assert_exact(settings, small, small_emails)
    _assert_exact(settings, big, big_emails)


def test_two_workers_never_hold_the_same_unit_at_once(
    start_server: ServerFactory,
    start_worker: WorkerFactory,
    keys: Keys,
    settings: Settings,
    backend: str,
) -> None:
    server = start_server(chunk_size=500)
    engine = crm_engine(settings)
    big_list, big_emails = add_list(engine, "shared", 20_000)
    small_list, small_emails = add_list(engine, "tiny", 20)
    big = add_mailshot(engine, big_list, "Shared big")
    smalls = [add_mailshot(engine, small_list, f"Tiny {i}") for i in range(10)]
    crm = Crm(server, keys)
    for w in range(2):
        start_worker(server, args=("--concurrency", "3", "--worker-id", f"machine-{w}"))
    crm.synchronise(big)
    for m in smalls:
        crm.synchronise(m)
    ended = crm.wait([big, *smalls], timeout=120)
    assert all(st["state"] == "synchronised" for st in ended.values())
    _assert_exact(settings, big, big_emails)
    for m in smalls:
        _assert_exact(settings, m, small_emails)

    with engine.connect() as conn:
        rows = conn.execute(
            select(
                SyncLeaseLog.unit_id,
                SyncLeaseLog.leased_at,
                SyncLeaseLog.ended_at,
                SyncLeaseLog.worker_id,
            )
        ).all()
    engine.dispose()
    by_unit: dict[int, list[tuple[object, object]]] = {}
    for unit_id, leased_at, ended_at, _ in rows:
        by_unit.setdefault(unit_id, []).append((leased_at, ended_at))
    assert {str(r[3]).split("/")[0] for r in rows} == {"machine-0", "machine-1"}
    assert len(by_unit) == (40 + 2) + 10 * 3
    for spans in by_unit.values():
        spans.sort(key=lambda s: s[0])  # type: ignore[arg-type, return-value]
        for (_, end), (start, _) in pairwise(spans):
            assert end is not None and end <= start, "two leases of one unit overlapped"
