"""The write turns of a SQLite engine (mailshot.core.db.engine): writers of one process queue
for the write lock, a turn is given back whatever ends the transaction, and readers never wait."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from mailshot.core.db.engine import (
    SQLITE_PAGE_SIZE,
    bulk_writes,
    make_engine,
    make_unchecked_writer,
)


def _engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'turns.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    return engine


def test_many_writer_threads_all_commit_and_none_is_lost(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(20):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": n * 100 + i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), count(DISTINCT n) FROM t")).one() == (160, 160)
    engine.dispose()


def test_a_turn_comes_back_on_rollback_and_on_return_to_the_pool(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    conn = engine.connect()
    conn.begin()
    conn.execute(text("INSERT INTO t VALUES (1)"))
    conn.rollback()
    # Left open without commit or rollback: returning the connection gives the turn back.
    leaked = engine.connect()
    leaked.begin()
    leaked.execute(text("INSERT INTO t VALUES (2)"))
    leaked.close()
    started = time.monotonic()
    with engine.begin() as other:
        other.execute(text("INSERT INTO t VALUES (3)"))
    assert time.monotonic() - started < 2  # no wait for a turn nobody holds
    with engine.connect() as check:
        assert check.execute(text("SELECT n FROM t")).scalars().all() == [3]
    conn.close()
    engine.dispose()


def test_a_reader_does_not_wait_for_a_writers_turn(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    writer = engine.connect()
    writer.begin()
    writer.execute(text("INSERT INTO t VALUES (1)"))
    started = time.monotonic()
    with engine.connect().execution_options(sqlite_begin="DEFERRED") as reader:
        reader.begin()
        assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    assert time.monotonic() - started < 2
    writer.commit()
    writer.close()
    engine.dispose()


def _written_in_turn(holder_via: Any, *writers: tuple[str, Any, bool, float]) -> list[str]:
    """Hold a write turn through ``holder_via``; start each writer ``(name, engine, bulk,
    seconds to wait after starting it)``, none of which writes while the turn is held;
    give the turn back and answer the order in which they wrote."""
    order: list[str] = []

    def write(name: str, via: Any, bulk: bool) -> None:
        with bulk_writes() if bulk else nullcontext(), via.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            order.append(name)

    holder = holder_via.connect()
    holder.begin()
    holder.execute(text("INSERT INTO t VALUES (0)"))  # holds the turn
    threads = []
    for name, via, bulk, pause in writers:
        threads.append(threading.Thread(target=write, args=(name, via, bulk)))
        threads[-1].start()
        time.sleep(pause)  # it is waiting
    assert order == []
    holder.commit()
    holder.close()
    for t in threads:
        t.join(timeout=10)
    return order


def test_a_writer_waiting_goes_before_bulk_work_waiting_longer(tmp_path: Path) -> None:
    """Bulk transactions (a snapshot slice, a large chunk) let any other waiting writer go
    first: the turn given back goes to the Synchronise that came later, not to the bulk
    writer that was already waiting; the bulk writer follows it."""
    engine = _engine(tmp_path)
    order = _written_in_turn(
        engine, ("bulk", engine, True, 0.3), ("synchronise", engine, False, 0.3)
    )
    assert order == ["synchronise", "bulk"]
    with engine.connect() as check:
        assert check.execute(text("SELECT count(*) FROM t")).scalar_one() == 3
    engine.dispose()


def test_bulk_work_alone_takes_its_turn_at_once(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    started = time.monotonic()
    with bulk_writes(), engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert time.monotonic() - started < 2
    engine.dispose()


def test_an_unchecked_writer_skips_only_foreign_key_checks(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(text("CREATE TABLE child (parent_id INTEGER NOT NULL REFERENCES parent(id))"))
    writer = make_unchecked_writer(engine)
    assert writer is not engine
    for via, expected in ((engine, 1), (writer, 0)):
        with via.connect() as conn:
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == expected
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO child VALUES (7)"))
    # NOT NULL and the rest are still enforced
    with pytest.raises(IntegrityError), writer.begin() as conn:
        conn.execute(text("INSERT INTO child VALUES (NULL)"))
    writer.dispose()
    engine.dispose()


def test_an_unchecked_writer_takes_the_same_turns_as_its_engine(tmp_path: Path) -> None:
    """The bulk writer of the unchecked engine lets a writer of the main engine that waits
    go first, as if both were one engine's (with turns of its own it would be given the
    lock first, the main engine's writer still polling SQLite's lock)."""
    engine = _engine(tmp_path)
    writer = make_unchecked_writer(engine)
    # The turn is held via the writer; the main engine's writer waits first.
    order = _written_in_turn(writer, ("small", engine, False, 0.6), ("bulk", writer, True, 0.3))
    assert order == ["small", "bulk"]
    writer.dispose()
    engine.dispose()


def test_other_databases_have_no_unchecked_writer() -> None:
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert make_unchecked_writer(engine) is engine


def test_a_new_file_gets_large_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    """New SQLite files are made with SQLITE_PAGE_SIZE pages (fewer pages for a sync's
    million rows); a file made elsewhere with SQLite's default keeps it (its data stays
    readable, nothing is rewritten)."""
    old = tmp_path / "old.db"
    plain = sqlite3.connect(old)
    plain.execute("CREATE TABLE t (x INTEGER)")
    plain.execute("INSERT INTO t VALUES (1)")
    plain.commit()
    plain.close()
    for path, size, rows in ((tmp_path / "new.db", SQLITE_PAGE_SIZE, 0), (old, 4096, 1)):
        engine = make_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            assert conn.execute(text("PRAGMA page_size")).scalar_one() == size
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == rows
        engine.dispose()
