"""SQLite: a recipient chunk is staged (copied into the connection's temporary table)
outside the write transaction, so another writer holding the ESP file's write lock delays
only the chunk's statements, never its parsing or staging."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path

import pytest

from mailshot.contracts.campaign import IntegratedCampaignPut
from mailshot.contracts.chunks import RecipientChunk
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.core.db.migrate import upgrade
from mailshot.esp.services import audience, campaigns

COLUMNS = ["person_id", "email", "first_name", "last_name"]


def _chunk(n: int) -> RecipientChunk:
    rows: list[list[object]] = [[i, f"P{i}@Example.com", f"F{i}", None] for i in range(1, n + 1)]
    return RecipientChunk(snapshot=1, columns=COLUMNS, rows=rows)


def test_a_chunk_is_staged_while_another_writer_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "esp.db"
    upgrade("esp", f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    sessions = make_sessionmaker(engine)
    put = IntegratedCampaignPut(
        snapshot=1,
        crm_mailshot_uid=uuid.uuid4(),
        name="C",
        subject="S",
        from_name="F",
        from_address="f@example.com",
        text="t",
    )
    with sessions() as session:
        campaigns.upsert_integrated(session, 7, put)
    parsed = audience.parse_chunk(_chunk(50).columns, _chunk(50).rows)

    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    try:
        staged: list[int] = []

        def stage() -> None:
            with engine.connect() as conn:
                audience._stage_rows(conn, parsed.columns)
                raw = conn.connection.driver_connection
                assert raw is not None
                staged.append(raw.execute(f"SELECT count(*) FROM {audience.STAGED}").fetchone()[0])

        stager = threading.Thread(target=stage)
        stager.start()
        stager.join(5)
        assert not stager.is_alive(), "staging waited for the write lock"
        assert staged == [50]

        answers: list[object] = []
        writer = threading.Thread(
            target=lambda: answers.append(audience.write_recipients(sessions, 7, _chunk(50)))
        )
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and not answers  # its statements wait for the lock
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    writer.join(10)
    assert [(a.written, a.duplicates) for a in answers] == [(50, 0)]  # type: ignore[attr-defined]
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT c.email_normalised, r.crm_person_id FROM campaign_recipients r"
            " JOIN contacts c ON c.id = r.contact_id ORDER BY r.crm_person_id"
        ).all()
    assert [tuple(r) for r in stored] == [(f"p{i}@example.com", i) for i in range(1, 51)]
    engine.dispose()


def test_staging_copies_every_row_across_several_statements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows go in statements of STAGE_ROWS_PER_STATEMENT and one for the rest: every
    value arrives, in order, whatever the chunk's size."""
    monkeypatch.setattr(audience, "STAGE_ROWS_PER_STATEMENT", 7)
    engine = make_engine(f"sqlite:///{tmp_path / 'esp.db'}")
    rows = [
        (
            i,
            f"P{i}@Example.com",
            f"p{i}@example.com",
            f"F{i}",
            None if i % 3 else "L",
            i % 5 or None,
            f"Org {i % 5}" if i % 5 else "",
        )
        for i in range(1, 31)  # 4 statements of 7 rows, then 2
    ]
    for chunk in (rows, rows[:7], rows[:3]):
        with engine.connect() as conn:
            audience._stage_rows(conn, list(zip(*chunk, strict=True)))
            raw = conn.connection.driver_connection
            assert raw is not None
            staged = raw.execute(f"SELECT * FROM {audience.STAGED} ORDER BY rowid").fetchall()
        assert staged == chunk
    engine.dispose()
