"""Database plumbing shared by the CRM and the ESP: engines, sessions and column types.

One code path serves both engines. SQLite runs in WAL mode with a busy timeout and foreign
keys on; PostgreSQL runs through psycopg 3. Timestamps are stored in UTC and come back
timezone-aware; identifiers are 64-bit on PostgreSQL and SQLite's rowid on SQLite. No
engine puts a statement's parameters (people's addresses and names) in its errors, hence
in no log line or traceback (``hide_parameters``, and PostgreSQL's DETAIL lines dropped).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import BigInteger, DateTime, Engine, Integer, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator

from mailshot.core.clock import require_aware, utcnow
from mailshot.core.private_files import private_file

#: Primary-key type: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
IdType = BigInteger().with_variant(Integer(), "sqlite")

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Idle SQLite connections kept per engine: each keeps its own page cache (up to
#: ``cache_size``) for as long as it lives, so a large pool is resident memory. SQLite
#: serialises writers anyway; connections beyond these (the overflow) are closed on return.
SQLITE_POOL_SIZE = 4
#: Page cache per SQLite connection (KiB): a trade of speed against resident memory (see
#: docs/PERFORMANCE.md).
SQLITE_CACHE_KIB = 6144
#: Page size (bytes) of the SQLite files mailshot creates (SQLite's default is 4,096). A
#: sync appends a million rows to a few tables and their indexes: with 16 KiB pages there
#: are a quarter as many pages to split, write to the WAL and checkpoint. It applies when
#: the file is created (set before anything is written); an existing file keeps its size.
SQLITE_PAGE_SIZE = 16_384
#: A write of at most this many rows is a small write, ordinary work; a larger one (a
#: large source's snapshot, a large chunk of recipients) is bulk work (:func:`bulk_writes`),
#: so small writes go before it.
SMALL_WRITE_ROWS = 1000


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that refuses naive input and returns aware values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        aware = require_aware(value)
        if dialect.name == "sqlite":
            return aware.replace(tzinfo=None)
        return aware

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` to the psycopg 3 driver; leave everything else alone."""
    u = make_url(url)
    if u.drivername in {"postgresql", "postgres"}:
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any, *, foreign_keys: bool = True) -> None:
    # Let SQLAlchemy, not the driver, manage transactions, so BEGIN IMMEDIATE works.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")  # a new, empty file only: see there
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cur.close()


_BULK_WRITES: ContextVar[bool] = ContextVar("mailshot_bulk_writes", default=False)


@contextmanager
def bulk_writes() -> Iterator[None]:
    """Mark the writing transactions begun inside as bulk work (a snapshot, a large chunk
    of recipients): on SQLite they take their turn at the write lock only when no other
    writer of the process is waiting (see :class:`_WriteTurns`)."""
    token = _BULK_WRITES.set(True)
    try:
        yield
    finally:
        _BULK_WRITES.reset(token)


class _WriteTurns:
    """Turns at one SQLite database's write lock for the threads of this process.

    SQLite makes a writer that finds the lock taken poll for it (sleeping 1 ms, then
    longer, up to 100 ms between tries), so under a stream of writers a short write can
    lose the race again and again: a small sync's lease waited seconds behind three large
    snapshots. Here the writing transactions of one engine first wait for their turn in
    the process (woken when the turn is given back), and only then ``BEGIN IMMEDIATE``;
    writers in other processes still meet SQLite's own lock and busy timeout. Bulk
    transactions (:func:`bulk_writes`) let every other waiting writer go first, so a
    Synchronise, a lease or a small sync's write waits at most for the transaction under
    way, not for a queue of snapshot slices and large chunks. A turn is given back when the
    transaction commits or rolls back, or at the latest when its connection goes back to
    the pool; a writer that waited a whole busy timeout goes ahead without one.
    """

    KEY = "mailshot_write_turn"

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._held = False
        self._others_waiting = 0  # writers waiting that are not bulk

    def take(self, conn: Any) -> None:
        if conn.info.get(self.KEY):
            return
        bulk = _BULK_WRITES.get()
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
        with self._changed:
            if not bulk:
                self._others_waiting += 1
            try:
                while self._held or (bulk and self._others_waiting):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return  # go ahead without a turn: SQLite's own lock decides
                    self._changed.wait(left)
                self._held = True
            finally:
                if not bulk:
                    self._others_waiting -= 1
        conn.info[self.KEY] = True

    def give_back(self, info: dict[str, Any]) -> None:
        if info.pop(self.KEY, False):
            with self._changed:
                self._held = False
                self._changed.notify_all()

    def install(self, engine: Engine) -> None:
        def on_begin(conn: Any) -> None:
            if _begin_mode(conn) == "IMMEDIATE":
                self.take(conn)
            _sqlite_on_begin(conn)

        event.listen(engine, "begin", on_begin)
        for name in ("commit", "rollback"):
            event.listen(engine, name, lambda conn: self.give_back(conn.info))
        event.listen(engine, "checkin", lambda _dbapi, record: self.give_back(record.info))
        event.listen(engine, "invalidate", lambda _dbapi, record, _exc: self.give_back(record.info))


def _begin_mode(conn: Any) -> str:
    """How a transaction on ``conn`` begins: ``IMMEDIATE`` unless the caller asked for
    another mode with ``execution_options(sqlite_begin=...)``."""
    return str(conn.get_execution_options().get("sqlite_begin", "IMMEDIATE"))


def _sqlite_on_begin(conn: Any) -> None:
    # Every transaction that may write takes the write lock up front (BEGIN IMMEDIATE)
    # unless the caller asked for a read-only one; this avoids SQLITE_BUSY upgrades
    # half-way through a transaction, which the busy timeout cannot wait out.
    mode = _begin_mode(conn)
    conn.exec_driver_sql(f"BEGIN {mode}" if mode else "BEGIN")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create an engine for ``url`` with the settings mailshot relies on."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        _private_sqlite_file(url)
        return _sqlite_engine(url, pool_size, _WriteTurns(), foreign_keys=True)
    return _postgresql_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def _postgresql_engine(url: str, **options: Any) -> Engine:
    engine = create_engine(url, hide_parameters=True, **options)
    event.listen(engine, "handle_error", _without_values)
    return engine


def _without_values(context: Any) -> None:
    """PostgreSQL's error text names the offending values in its DETAIL line (``Key
    (email)=(someone@example.com) already exists``): the error keeps the primary message
    only (which names the constraint); the detail stays on the driver's ``diag``."""
    orig = context.original_exception
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    if not primary:
        return
    orig.args = (primary,)
    wrapped = context.sqlalchemy_exception  # its text was made from the driver's already
    if wrapped is not None:
        wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {primary}",)


def _private_sqlite_file(url: str) -> None:
    """Create a new SQLite database file 0600 in a 0700 folder before SQLite would create
    it 0644: it holds people's data and password hashes (its WAL files take its mode)."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        private_file(Path(database))


def _sqlite_engine(url: str, pool_size: int, turns: _WriteTurns, *, foreign_keys: bool) -> Engine:
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_size=min(pool_size, SQLITE_POOL_SIZE),
        max_overflow=20 + max(0, pool_size - SQLITE_POOL_SIZE),
    )
    event.listen(
        engine,
        "connect",
        lambda dbapi_conn, record: _sqlite_on_connect(
            dbapi_conn, record, foreign_keys=foreign_keys
        ),
    )
    turns.install(engine)
    _TURNS[engine] = turns
    return engine


#: The write turns of each SQLite engine (an engine and its unchecked writer share them).
_TURNS: WeakKeyDictionary[Engine, _WriteTurns] = WeakKeyDictionary()
#: Idle connections kept by an unchecked writer (:func:`make_unchecked_writer`).
UNCHECKED_WRITER_POOL_SIZE = 2


def make_unchecked_writer(engine: Engine) -> Engine:
    """A second engine on ``engine``'s SQLite database whose connections do not check
    foreign keys, for a writer that only ever writes rows whose parents it has just read
    or written in the same transaction (the ESP's recipient chunks). SQLite checks each
    foreign key of an inserted row with one more index probe (a quarter of the audience
    statement's time), and switching the check off and on per transaction would make the
    connection prepare its statements again. The two engines take the same turns at the
    write lock (:class:`_WriteTurns`), so neither polls SQLite's lock behind the other.
    Other databases: ``engine`` itself."""
    turns = _TURNS.get(engine)
    if turns is None:
        return engine
    return _sqlite_engine(
        engine.url.render_as_string(hide_password=False),
        UNCHECKED_WRITER_POOL_SIZE,
        turns,
        foreign_keys=False,
    )


def make_unpooled_engine(url: str) -> Engine:
    """An engine without a pool, for one-off administrative work (migrations, tests)."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        _private_sqlite_file(url)
        engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return _postgresql_engine(url, poolclass=NullPool)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_sqlite(engine_or_session: Engine | Session) -> bool:
    bind = (
        engine_or_session.get_bind()
        if isinstance(engine_or_session, Session)
        else engine_or_session
    )
    return bind.dialect.name == "sqlite"


def db_now(session: Session) -> datetime:
    """The database's clock: PostgreSQL's ``clock_timestamp()``; on SQLite (a local file) the
    host clock, which is the same machine's clock as the database's."""
    if is_sqlite(session):
        return utcnow()
    value = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


def begin_read(session: Session) -> None:
    """Unless ``session`` is in a transaction already, begin its next one as a read: on
    SQLite a plain ``BEGIN``, which neither takes nor waits for the write lock. For a
    service that only reads but may be called on a session whose earlier work committed
    (a POST that answers with a status: its default transaction would wait for a turn at
    the write lock behind a snapshot slice, for nothing)."""
    if not session.in_transaction():
        session.connection(execution_options={"sqlite_begin": "DEFERRED"})


@contextmanager
def read_only(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction does not take SQLite's write lock (plain BEGIN)."""
    with session_factory() as session:
        begin_read(session)
        yield session
