"""The write turns of a SQLite engine (mailshot.db): writers of one process queue for the
write lock, a turn is given back whatever ends the transaction, and readers never wait."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from pathlib import Path

from sqlalchemy import text

from mailshot.db import bulk_writes, make_engine


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


def test_a_writer_waiting_goes_before_bulk_work_waiting_longer(tmp_path: Path) -> None:
    """Bulk transactions (a snapshot slice, a large chunk) let any other waiting writer go
    first: the turn given back goes to the Synchronise that came later, not to the bulk
    writer that was already waiting; the bulk writer follows it."""
    engine = _engine(tmp_path)
    order: list[str] = []

    def write(name: str, bulk: bool) -> None:
        with bulk_writes() if bulk else nullcontext(), engine.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            order.append(name)

    holder = engine.connect()
    holder.begin()
    holder.execute(text("INSERT INTO t VALUES (0)"))  # holds the turn
    bulk_writer = threading.Thread(target=write, args=("bulk", True))
    bulk_writer.start()
    time.sleep(0.3)  # the bulk writer is waiting
    other = threading.Thread(target=write, args=("synchronise", False))
    other.start()
    time.sleep(0.3)  # both are waiting
    assert order == []
    holder.commit()
    holder.close()
    for t in (bulk_writer, other):
        t.join(timeout=10)
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
