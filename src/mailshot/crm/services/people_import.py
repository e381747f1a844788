"""Importing People from a CSV file: streaming, set-based, resumable and idempotent.

The file is read one record at a time (:mod:`mailshot.crm.services.csv_people`) and applied
in batches of :data:`BATCH_ROWS` rows. Each batch is one transaction that writes its people,
its list memberships, its rejected lines and the run's checkpoint (``import_runs.last_line``
and the counts) together: a run interrupted anywhere has applied whole batches only, and
``resume`` carries on after the checkpoint.

**Upsert by email.** A row is matched to a person by the normalised address (trimmed,
lower-cased). When several people already share that address, the row updates the one
with the lowest id (the same person the audience rules keep). A matched person gets the
values of the row's non-blank cells (a blank cell changes nothing; the stored address is
kept as it is); only people whose values differ are written, so importing the same file
again changes nothing. A row with an address nobody has creates a person.

**Rejected rows** (the line, a reason code and a sentence): ``no_email``,
``invalid_email`` (email-validator, no network), ``duplicate_in_file`` (an address an
earlier row of the file already used: the first is kept), ``encoding`` (a line that is
not UTF-8), ``malformed_csv`` (a line that is not valid CSV), ``unclosed_quote`` (a
quote that does not close: that line only is lost, the next is read),
``column_count``, ``invalid_value`` and ``unknown_organisation``. Every line of the file
is imported, rejected, or blank.

With a list, every person of an applied row becomes a subscribed member; people already
members keep their subscribed flag (an import never re-subscribes anyone). Changes of the
"No Email" opt-out and the import itself are written to the audit log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.sqlhelpers import get_or_404
from mailshot.core.errors import AppError
from mailshot.crm.errors import (
    IMPORT_ALREADY_COMPLETED,
    IMPORT_FILE_UNREADABLE,
    IMPORT_NOTHING_TO_RESUME,
    IMPORT_RESUME_FILE_CHANGED,
    MAILING_LIST_DYNAMIC_MEMBERS,
    field_error,
)
from mailshot.crm.models import ImportRejection, ImportRun, MailingList, Organisation
from mailshot.crm.models.imports import ImportState
from mailshot.crm.services import csv_people
from mailshot.crm.services import people_bulk as bulk
from mailshot.crm.services.common import audit
from mailshot.crm.services.csv_people import EmailChecker, Rejected, Row

#: Rows applied per transaction.
BATCH_ROWS = 5000
#: The person columns a row can write (the address is the key and is never rewritten).
_WRITABLE = bulk.WRITABLE
_DEFAULTS: dict[str, Any] = {
    "first_name": "",
    "last_name": "",
    "country": None,
    "job_title": None,
    "organisation_id": None,
    "no_email": False,
}
REJECTIONS = cast(Table, ImportRejection.__table__)
RUNS = cast(Table, ImportRun.__table__)

Progress = Callable[[int], None]


def file_hash(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def start(
    session: Session,
    path: Path,
    *,
    actor: str,
    mapping: dict[str, str] | None = None,
    list_id: int | None = None,
    file_name: str | None = None,
) -> ImportRun:
    """Check the file's header, the mapping and the list, then record a new run; commit."""
    name = file_name or path.name
    with path.open("rb") as fh:
        header, _ = csv_people.open_records(fh, name)
    resolved = csv_people.resolve_mapping(header, mapping or {})
    if list_id is not None:
        ml = session.get(MailingList, list_id)
        if ml is None:
            raise field_error("list_id", "exists", f"there is no mailing list with id {list_id}")
        if ml.kind == "dynamic":
            raise AppError(MAILING_LIST_DYNAMIC_MEMBERS, name=ml.name, list_id=ml.id)
    digest, size = file_hash(path)
    now = utcnow()
    run = ImportRun(
        kind="people",
        file_name=name[:500],
        file_hash=digest,
        file_size=size,
        mapping=resolved.columns,
        list_id=list_id,
        actor=actor[:255],
        state=ImportState.RUNNING,
        started_at=now,
        updated_at=now,
    )
    session.add(run)
    session.commit()
    return run


def get(session: Session, run_id: int) -> ImportRun:
    return get_or_404(session, ImportRun, run_id, "import")


def unfinished_run_for(session: Session, path: Path, file_name: str | None = None) -> ImportRun:
    """The latest interrupted run that read a file with the same content as ``path``."""
    digest, _ = file_hash(path)
    run = session.scalars(
        select(ImportRun)
        .where(ImportRun.file_hash == digest, ImportRun.state == ImportState.RUNNING)
        .order_by(ImportRun.id.desc())
        .limit(1)
    ).first()
    if run is None:
        raise AppError(IMPORT_NOTHING_TO_RESUME, file_name=file_name or path.name)
    return run


def check_resumable(session: Session, run: ImportRun, path: Path) -> None:
    if run.state == ImportState.COMPLETED:
        raise AppError(IMPORT_ALREADY_COMPLETED, run_id=run.id, file_name=run.file_name)
    if not path.is_file():
        raise AppError(IMPORT_FILE_UNREADABLE, file_name=run.file_name, reason="it is not there")
    digest, _ = file_hash(path)
    if digest != run.file_hash:
        raise AppError(
            IMPORT_RESUME_FILE_CHANGED, run_id=run.id, expected=run.file_hash, actual=digest
        )


def rejected_by_reason(session: Session, run_id: int) -> dict[str, int]:
    r = ImportRejection.__table__
    rows = session.execute(
        select(r.c.reason, func.count()).where(r.c.run_id == run_id).group_by(r.c.reason)
    )
    return {str(reason): int(n) for reason, n in rows}


# ---- running ----------------------------------------------------------------------------
@dataclass
class _Batch:
    rows: list[Row] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    rows_read: int = 0
    last_line: int = 0


def run(
    session: Session,
    run_id: int,
    path: Path,
    *,
    progress: Progress | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportRun:
    """Apply the file of run ``run_id`` from its checkpoint to the end, a batch per
    transaction; then mark it completed and audit it. Returns the finished run."""
    imp = get(session, run_id)
    check_resumable(session, imp, path)
    checkpoint, list_id, actor = imp.last_line, imp.list_id, imp.actor
    session.rollback()
    r = ImportRejection.__table__
    done_rejections = set(
        session.scalars(select(r.c.line).where(r.c.run_id == run_id, r.c.line <= checkpoint))
    )
    session.rollback()
    seen: set[int] = set()
    checker = EmailChecker()
    with path.open("rb") as fh:
        header, reader = csv_people.open_records(fh, imp.file_name, progress)
        mapping = csv_people.resolve_mapping(header, dict(imp.mapping))
        batch = _Batch()
        for record in csv_people.records(reader, mapping, checker):
            if record.last_line <= checkpoint:
                # Applied before the interruption: only remember the addresses it used.
                out = record.outcome
                if isinstance(out, Row) and out.line not in done_rejections:
                    seen.add(hash(out.email_normalised))
                continue
            batch.rejected += record.bad_lines
            batch.rows_read += len(record.bad_lines)
            batch.last_line = record.last_line
            out = record.outcome
            if out is None:
                continue
            batch.rows_read += 1
            if isinstance(out, Rejected):
                batch.rejected.append(out)
            else:
                batch.rows.append(out)
            if len(batch.rows) >= batch_rows:
                _apply(session, run_id, list_id, actor, batch, seen)
                batch = _Batch()
        if batch.last_line > checkpoint:
            _apply(session, run_id, list_id, actor, batch, seen)
    return _finish(session, run_id)


def _finish(session: Session, run_id: int) -> ImportRun:
    imp = session.get(ImportRun, run_id, populate_existing=True)
    assert imp is not None
    now = utcnow()
    imp.state, imp.finished_at, imp.updated_at = ImportState.COMPLETED, now, now
    detail = {
        "file": imp.file_name,
        "file_hash": imp.file_hash,
        "list_id": imp.list_id,
        **{
            k: getattr(imp, k)
            for k in ("rows_read", "inserted", "updated", "unchanged", "rejected", "added_to_list")
        },
        "rejected_by_reason": rejected_by_reason(session, run_id),
    }
    audit(session, imp.actor, "people.import", "import_run", run_id, detail)
    session.commit()
    return imp


def _apply(
    session: Session, run_id: int, list_id: int | None, actor: str, batch: _Batch, seen: set[int]
) -> None:
    """Write one batch, its rejections and the checkpoint in one transaction; commit."""
    now = utcnow()
    rows = _keep_valid(session, batch, seen)
    existing = bulk.lowest_by_email(session, [row.email_normalised for row in rows])
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    unchanged = 0
    opted: dict[bool, list[int]] = {True: [], False: []}
    for row in rows:
        found = existing.get(row.email_normalised)
        if found is None:
            inserts.append(
                {
                    **_DEFAULTS,
                    **row.values,
                    "email_normalised": row.email_normalised,
                    "email_status": "ok",
                }
            )
            continue
        current = dict(zip(_WRITABLE, found[1:], strict=True))
        changed = {k: v for k, v in row.values.items() if k in current and current[k] != v}
        if not changed:
            unchanged += 1
            continue
        if "no_email" in changed:
            opted[bool(changed["no_email"])].append(int(found[0]))
        updates.append({"id": found[0], **current, **changed})
    bulk.insert_people(session, inserts, now)
    bulk.update_people(session, updates, now)
    if inserts:
        new = bulk.lowest_by_email(session, [i["email_normalised"] for i in inserts])
        existing.update(new)
        opted[True] += [int(new[i["email_normalised"]][0]) for i in inserts if i["no_email"]]
    added = 0
    if list_id is not None and rows:
        ids = [int(existing[r.email_normalised][0]) for r in rows]
        added = bulk.add_to_list(session, list_id, ids, now)
    for flag, person_ids in opted.items():
        if person_ids:
            action = "person.opt_out" if flag else "person.opt_in"
            detail = {"person_ids": person_ids, "no_email": flag, "import_run_id": run_id}
            audit(session, actor, action, "import_run", run_id, detail)
    if batch.rejected:
        session.execute(
            insert(REJECTIONS),
            [
                {
                    "run_id": run_id,
                    "line": r.line,
                    "reason": r.reason,
                    "message": r.message,
                    "email": r.email[:320] if r.email else None,
                }
                for r in batch.rejected
            ],
        )
    session.execute(
        update(RUNS)
        .where(RUNS.c.id == run_id)
        .values(
            last_line=batch.last_line,
            updated_at=now,
            rows_read=RUNS.c.rows_read + batch.rows_read,
            inserted=RUNS.c.inserted + len(inserts),
            updated=RUNS.c.updated + len(updates),
            unchanged=RUNS.c.unchanged + unchanged,
            rejected=RUNS.c.rejected + len(batch.rejected),
            added_to_list=RUNS.c.added_to_list + added,
        )
    )
    session.commit()


def _keep_valid(session: Session, batch: _Batch, seen: set[int]) -> list[Row]:
    """The batch's rows that can be applied, in file order: rows naming an organisation
    that does not exist, and rows repeating an address of the file, join the rejected."""
    wanted = {r.values["organisation_id"] for r in batch.rows if "organisation_id" in r.values}
    known: set[int] = set()
    if wanted:
        known = set(session.scalars(select(Organisation.id).where(Organisation.id.in_(wanted))))
    kept: list[Row] = []
    for row in batch.rows:
        org = row.values.get("organisation_id")
        email = row.values["email"]
        if org is not None and org not in known:
            batch.rejected.append(
                Rejected(row.line, "unknown_organisation", f"there is no organisation {org}", email)
            )
            continue
        key = hash(row.email_normalised)
        if key in seen:
            batch.rejected.append(
                Rejected(
                    row.line,
                    "duplicate_in_file",
                    f"'{email}' appears on an earlier line of the file (the first is kept)",
                    email,
                )
            )
            continue
        seen.add(key)
        kept.append(row)
    batch.rejected.sort(key=lambda r: r.line)
    return kept
