"""Measure the ESP's recipient hot path: rows/s of POST .../recipients on SQLite.

Usage: python bench/esp_recipients.py [rows] [chunk] [--http] [--pg URL]

Writes ``rows`` recipients in chunks of ``chunk`` through the service (or, with --http,
through the in-process HTTP API), then finalises; prints rows/s, and for comparison the
rate of a plain executemany of the same rows into an empty SQLite table in the same run.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mailshot.contracts.campaign import FinalizeRequest, IntegratedCampaignPut
from mailshot.contracts.chunks import RECIPIENT_COLUMNS, RecipientChunk
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.db.migrate import upgrade
from mailshot.esp.services import audience, campaigns, finalize

COLUMNS = [str(c) for c in RECIPIENT_COLUMNS]


def rows_for(first: int, count: int) -> list[list[object]]:
    return [
        [i, 1_000_000 + i, f"Person.{i}@Example.com", f"First{i}", f"Last{i}", i % 500 or None]
        for i in range(first, first + count)
    ]


def baseline(folder: Path, total: int) -> float:
    conn = sqlite3.connect(folder / "baseline.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE t (seq INTEGER, person_id INTEGER, email TEXT, first_name TEXT,"
        " last_name TEXT, organisation_id INTEGER)"
    )
    rows = rows_for(0, total)
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    total = int(args[0]) if args else 200_000
    chunk = int(args[1]) if len(args) > 1 else 5_000
    http = "--http" in sys.argv
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'esp.db'}"
    if "--pg" in sys.argv:
        url = sys.argv[sys.argv.index("--pg") + 1]
    upgrade("esp", url)
    sessions = make_sessionmaker(make_engine(url))
    put = IntegratedCampaignPut(
        snapshot=1,
        crm_mailshot_uid=uuid.uuid4(),
        name="Bench",
        subject="S",
        from_name="F",
        from_address="f@example.com",
        text="hello",
    )
    with sessions() as s:
        campaigns.upsert_integrated(s, 1, put)

    client = None
    if http:
        from fastapi.testclient import TestClient

        from mailshot.core.settings import Settings
        from mailshot.esp.app import create_esp_app
        from mailshot.esp.services import access

        settings = Settings(data_dir=folder, esp_database_url=url, _env_file=None)  # type: ignore[call-arg]
        with sessions() as s:
            user = access.create_user(s, email="b@example.com", name="B", role="integration")
            _, token = access.create_key(s, user=user, name="bench")
            s.commit()
        client = TestClient(create_esp_app(settings))
        client.headers["Authorization"] = f"Bearer {token}"

    chunks = [rows_for(first, min(chunk, total - first)) for first in range(0, total, chunk)]
    started = time.perf_counter()
    for rows in chunks:
        if client is not None:
            r = client.post(
                "/api/v1/integrated-campaigns/1/recipients",
                json={"snapshot": 1, "columns": COLUMNS, "rows": rows},
            )
            assert r.status_code == 200, r.text
        else:
            audience.write_recipients(
                sessions, 1, RecipientChunk(snapshot=1, columns=COLUMNS, rows=rows)
            )
    written = time.perf_counter() - started
    with sessions() as s:
        t0 = time.perf_counter()
        result = finalize.finalize(s, 1, FinalizeRequest(snapshot=1, expected=total))
        finalised = time.perf_counter() - t0
    # the same chunks again: nothing changes
    t0 = time.perf_counter()
    for rows in chunks[:5]:
        audience.write_recipients(
            sessions, 1, RecipientChunk(snapshot=1, columns=COLUMNS, rows=rows)
        )
    replay = (time.perf_counter() - t0) / max(1, min(5, len(chunks)))
    print(f"{'http' if http else 'service'}: {total} rows in chunks of {chunk}")
    print(f"  write:    {written:.2f} s = {total / written:,.0f} rows/s")
    print(f"  finalize: {finalised:.3f} s -> audience {result.audience_count}")
    print(f"  replay of a chunk: {replay * 1000:.1f} ms")
    if url.startswith("sqlite"):
        print(f"  baseline executemany into SQLite: {baseline(folder, total):,.0f} rows/s")


if __name__ == "__main__":
    main()
