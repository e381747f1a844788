"""Requests refused because of their key, counted rather than written one by one: a tally in
memory per app (:class:`RefusalRecorder`) upserted at most once a second into per-minute
``key_refusals`` rows, bounded and pruned; :func:`refusals_page` reads them back."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import case, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from mailshot.core.clock import utcnow
from mailshot.core.web.paging import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

#: A row counts the refusals of one group within this many seconds.
BUCKET_SECONDS = 60
#: The tally is written at most this often (per part, per process).
FLUSH_SECONDS = 1.0
#: Rows one bucket keeps apart; later groups of the bucket share one row per reason.
GROUPS_PER_BUCKET = 200
#: Groups held in memory between writes; later ones share one group per reason.
PENDING_GROUPS = 1000
#: Old rows are deleted at most this often.
PRUNE_EVERY = timedelta(minutes=10)


@dataclass(frozen=True)
class _Group:
    bucket: datetime
    reason: str
    key_prefix: str | None
    api_key_id: int | None
    client_ip: str | None
    path: str | None

    @property
    def fingerprint(self) -> str:
        parts = (self.reason, self.key_prefix, self.api_key_id, self.client_ip, self.path)
        text = "\x1f".join("" if p is None else str(p) for p in parts)
        return hashlib.sha256(text.encode()).hexdigest()

    def overflow(self) -> _Group:
        """The group that counts this reason's refusals beyond the groups kept apart."""
        return _Group(self.bucket, self.reason, None, None, None, None)


@dataclass
class _Tally:
    count: int
    first_at: datetime
    last_at: datetime

    def add(self, other: _Tally) -> None:
        self.count += other.count
        self.first_at = min(self.first_at, other.first_at)
        self.last_at = max(self.last_at, other.last_at)


def bucket_of(at: datetime) -> datetime:
    start = int(at.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS
    return datetime.fromtimestamp(start, UTC)


class RefusalRecorder:
    """One part's tally of refused requests and its writer (thread-safe)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        model: Any,
        *,
        retention: timedelta,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.model = model
        self.retention = retention
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._pending: dict[_Group, _Tally] = {}
        self._last_write = float("-inf")
        self._timer: threading.Timer | None = None
        self._last_prune: datetime | None = None
        self._closed = False

    def record(
        self,
        reason: str,
        *,
        prefix: str | None,
        key_id: int | None,
        client_ip: str | None,
        path: str,
    ) -> None:
        """Count one refused request; write the tally now if none was written in the last
        ``flush_seconds``, else leave it to the timer."""
        now = utcnow()
        group = _Group(bucket_of(now), reason, prefix, key_id, client_ip, path[:500])
        with self._lock:
            if group not in self._pending and len(self._pending) >= PENDING_GROUPS:
                group = group.overflow()
            tally = self._pending.get(group)
            if tally is None:
                self._pending[group] = _Tally(1, now, now)
                # Logged once per group and write, without the secret (only the prefix).
                log.warning(
                    "api key refused",
                    extra={"reason": reason, "key_prefix": prefix, "ip": client_ip},
                )
            else:
                tally.count += 1
                tally.last_at = now
            wait = self._last_write + self.flush_seconds - time.monotonic()
            write_now = wait <= 0 and self._timer is None
            if not write_now and self._timer is None and not self._closed:
                self._timer = threading.Timer(max(wait, 0.0), self._on_timer)
                self._timer.daemon = True
                self._timer.start()
        if write_now:
            self.flush()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write what is counted so far (a reader calls it before reading, so this
        process's refusals are all in the table)."""
        with self._writing:
            with self._lock:
                batch, self._pending = self._pending, {}
                self._last_write = time.monotonic()
            if not batch:
                return
            try:
                self._write(batch)
            except Exception:
                log.exception("refused requests could not be recorded; retrying in a second")
                with self._lock:
                    for group, tally in batch.items():
                        held = self._pending.get(group)
                        if held is None:
                            self._pending[group] = tally
                        else:
                            held.add(tally)
                    if self._timer is None and not self._closed:
                        self._timer = threading.Timer(self.flush_seconds, self._on_timer)
                        self._timer.daemon = True
                        self._timer.start()

    def close(self) -> None:
        """Write what is left and stop the timer (the app's shutdown)."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()

    # ---- writing ---------------------------------------------------------------------
    def _write(self, batch: dict[_Group, _Tally]) -> None:
        m = self.model
        now = utcnow()
        prune = self._last_prune is None or now - self._last_prune >= PRUNE_EVERY
        with self.sessions() as s, s.begin():
            if prune:
                s.execute(delete(m).where(m.at < now - self.retention))
            self._upsert(s, self._bounded(s, batch))
        if prune:
            self._last_prune = now

    def _upsert(self, s: Session, rows: list[dict[str, Any]]) -> None:
        """Add the rows' counts to theirs (made if new), keyed by bucket and fingerprint."""
        m = self.model
        if rows:
            dialect = s.get_bind().dialect.name
            insert = sqlite.insert(m) if dialect == "sqlite" else postgresql.insert(m)
            new = insert.excluded
            stmt = insert.on_conflict_do_update(
                index_elements=[m.bucket, m.fingerprint],
                set_={
                    "count": m.count + new["count"],
                    "at": case((new.at > m.at, new.at), else_=m.at),
                    "first_at": case((new.first_at < m.first_at, new.first_at), else_=m.first_at),
                },
            )
            s.execute(stmt, rows)

    def _bounded(self, s: Session, batch: dict[_Group, _Tally]) -> list[dict[str, Any]]:
        """The batch as rows to upsert, in the order first seen; a group that would be a
        new row past :data:`GROUPS_PER_BUCKET` in its bucket is counted in its reason's
        overflow row instead."""
        m = self.model
        buckets = {g.bucket for g in batch}
        stored: dict[datetime, int] = dict(
            s.execute(
                select(m.bucket, func.count()).where(m.bucket.in_(buckets)).group_by(m.bucket)
            ).all()
        )
        fingerprints = {g: g.fingerprint for g in batch}
        existing = set(
            s.execute(
                select(m.bucket, m.fingerprint).where(
                    tuple_(m.bucket, m.fingerprint).in_(
                        [(g.bucket, f) for g, f in fingerprints.items()]
                    )
                )
            ).all()
        )
        merged: dict[_Group, _Tally] = {}
        for group, tally in sorted(batch.items(), key=lambda item: item[1].first_at):
            kept = group
            is_overflow = group == group.overflow()
            if (group.bucket, fingerprints[group]) not in existing and not is_overflow:
                used = stored.get(group.bucket, 0)
                if used >= GROUPS_PER_BUCKET:
                    kept = group.overflow()
                else:
                    stored[group.bucket] = used + 1
            held = merged.get(kept)
            if held is None:
                merged[kept] = _Tally(tally.count, tally.first_at, tally.last_at)
            else:
                held.add(tally)
        return [
            {
                "bucket": g.bucket,
                "fingerprint": g.fingerprint,
                "reason": g.reason,
                "key_prefix": g.key_prefix,
                "api_key_id": g.api_key_id,
                "client_ip": g.client_ip,
                "path": g.path,
                "count": t.count,
                "first_at": t.first_at,
                "at": t.last_at,
            }
            for g, t in merged.items()
        ]


def install(app: FastAPI, model: Any, retention_days: float) -> RefusalRecorder:
    """Give the part app ``app`` its recorder (``app.state.key_refusals``, over its
    sessions), whose tally is written when the app shuts down, before its engines close."""
    recorder = RefusalRecorder(app.state.sessions, model, retention=timedelta(days=retention_days))
    app.state.key_refusals = recorder
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            try:
                yield state
            finally:
                recorder.close()

    app.router.lifespan_context = lifespan
    return recorder


def flush_of(app: Any) -> None:
    """Write the part app's tally, so that what it counted so far can be read."""
    recorder: RefusalRecorder | None = getattr(app.state, "key_refusals", None)
    if recorder is not None:
        recorder.flush()


# ---- reading ---------------------------------------------------------------------------
class KeyRefusalPublic(BaseModel):
    """Requests refused because of their key, in one group (same key, reason, address and
    path) within one minute."""

    id: int
    at: datetime = Field(description="The latest refusal counted here.")
    first_at: datetime = Field(description="The first refusal counted here.")
    count: int = Field(description="How many requests were refused.")
    key_prefix: str | None
    api_key_id: int | None
    key_name: str | None
    reason: str
    client_ip: str | None
    path: str | None


def refusals_page(
    session: Session,
    refusal_model: Any,
    key_model: Any,
    *,
    cursor: str | None,
    limit: int,
    key_id: int | None = None,
    reason: str | None = None,
) -> tuple[list[KeyRefusalPublic], str | None]:
    """Refused requests by group, newest group first, with the key's name where known."""
    r, k = refusal_model, key_model
    query = select(r, k.name).outerjoin(k, k.id == r.api_key_id)
    if key_id is not None:
        query = query.where(r.api_key_id == key_id)
    if reason:
        query = query.where(r.reason == reason)
    before = decode_cursor(cursor)
    if before is not None:
        query = query.where(r.id < before)
    rows = list(session.execute(query.order_by(r.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1][0].id)
    items = [
        KeyRefusalPublic(
            id=row.id,
            at=row.at,
            first_at=row.first_at,
            count=row.count,
            key_prefix=row.key_prefix,
            api_key_id=row.api_key_id,
            key_name=name,
            reason=row.reason,
            client_ip=row.client_ip,
            path=row.path,
        )
        for row, name in rows
    ]
    return items, next_cursor
