"""How long the CRM's audience snapshot takes, alone (no server): the service
``mailshot.crm.services.snapshot.snapshot`` over a mailing list of N people.

Usage: python bench/snapshot.py --recipients N [--db sqlite|postgresql] [--repeat R]
       [--dirty] [--parallel K] [--unpooled]

Builds a fresh installation, bulk-inserts the audience, creates a sync job row and times
``snapshot()`` R times (each replaces the previous one, so repeats after the first also
delete the job's previous rows first, as a redo after a takeover does) plus the commit.
The engine is pooled as in ``mailshot serve`` (``--unpooled``: a new connection per
transaction, as the figures before 2026-11-27 03:40 were measured). ``--dirty`` leaves
some people out by every rule but consent (2 % unsubscribed, 1 % opted out, 0.5 %
invalid, 1 % sharing the address of the person before them). ``--parallel K`` snapshots K
such lists at once, one thread and one connection each (what three prepare units in one
``mailshot serve`` do). The last line printed is one JSON object with the figures:
seconds per snapshot, the read step (the plan, outside the write lock), the longest write
transaction, and the peak RSS of this process while snapshotting (its high-water mark is
reset once the audiences are built).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from _harness import Install, add_audience, installation, self_peak_rss_mb
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import make_engine, make_sessionmaker
from mailshot.crm.models import MailingListMember, Mailshot, Person, SyncJob
from mailshot.crm.services import snapshot as audience_snapshot


def make_dirty(inst: Install, mailshot_id: int) -> None:
    """Leave some of the list's people out, by every rule but consent."""
    engine = inst.crm_engine()
    p = Person.__table__
    m = MailingListMember.__table__
    with engine.begin() as conn:
        list_id = conn.execute(
            select(Mailshot.__table__.c.mailing_list_id).where(
                Mailshot.__table__.c.id == mailshot_id
            )
        ).scalar_one()
        ids = select(m.c.person_id).where(m.c.list_id == list_id).scalar_subquery()
        conn.execute(
            update(m)
            .where(m.c.list_id == list_id, m.c.person_id % 50 == 7)
            .values(subscribed=False)
        )
        conn.execute(update(p).where(p.c.id.in_(ids), p.c.id % 100 == 3).values(no_email=True))
        conn.execute(
            update(p).where(p.c.id.in_(ids), p.c.id % 200 == 5).values(email_status="invalid")
        )
        before = p.alias("before")
        shared = (
            select(before.c.email_normalised).where(before.c.id == p.c.id - 1).scalar_subquery()
        )
        conn.execute(
            update(p)
            .where(p.c.id.in_(ids), p.c.id % 100 == 11)
            .values(email_normalised=shared, email=shared)
        )
    engine.dispose()


def new_job(s: Session, mailshot_id: int) -> int:
    job_id = s.execute(
        insert(SyncJob.__table__)
        .values(
            mailshot_id=mailshot_id,
            state="preparing",
            chunk_size=5000,
            requested_at=utcnow(),
            chunks_done=0,
            recipients_written=0,
            units_leased=0,
            attempts=0,
            takeovers=0,
        )
        .returning(SyncJob.__table__.c.id)
    ).scalar_one()
    s.commit()
    return int(job_id)


def run(
    factory: Any, mailshot_id: int, repeat: int, single: bool, out: dict[str, list[float]]
) -> None:
    """Snapshot ``mailshot_id`` ``repeat`` times; figures appended to ``out``."""
    with factory() as s:
        job_id = new_job(s, mailshot_id)
        for _ in range(repeat):
            mailshot = s.get(Mailshot, mailshot_id)
            assert mailshot is not None
            steps: list[float] = []
            mark = [time.perf_counter()]

            def checkpoint(
                write: bool,
                s: Session = s,
                steps: list[float] = steps,
                mark: list[float] = mark,
            ) -> None:
                s.commit()
                now = time.perf_counter()
                steps.append(now - mark[0])
                mark[0] = now
                if not write:
                    s.connection(execution_options={"sqlite_begin": "DEFERRED"})

            t0 = time.perf_counter()
            if single:
                counts = audience_snapshot.snapshot(s, job_id, mailshot)
            else:
                counts = audience_snapshot.snapshot(s, job_id, mailshot, checkpoint=checkpoint)
            s.commit()
            steps.append(time.perf_counter() - mark[0])
            out["seconds"].append(time.perf_counter() - t0)
            # steps[1] is the read (no write lock); the others are write transactions.
            out["read"].append(steps[1] if len(steps) > 1 else 0.0)
            out["longest"].append(max(steps[2:] or steps))
            print(
                f"snapshot {out['seconds'][-1]:.2f} s, {len(steps)} steps, read "
                f"{out['read'][-1]:.2f} s, longest write {out['longest'][-1]:.3f} s: {counts}",
                file=sys.stderr,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, required=True)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--single", action="store_true", help="one transaction (no checkpoint), as before"
    )
    parser.add_argument("--dirty", action="store_true", help="leave some people out")
    parser.add_argument("--parallel", type=int, default=1, help="snapshot K lists at once")
    parser.add_argument(
        "--unpooled",
        action="store_true",
        help="no connection pool (each commit closes the connection), as before",
    )
    args = parser.parse_args()
    with installation(args.db) as inst:
        mailshot_ids = [
            add_audience(inst, f"bench{k}", args.recipients) for k in range(args.parallel)
        ]
        if args.dirty:
            for mailshot_id in mailshot_ids:
                make_dirty(inst, mailshot_id)
        # Pooled, as in `mailshot serve` (a connection and its page cache outlive a commit).
        url = inst.settings.crm_db_url()
        engine = inst.crm_engine() if args.unpooled else make_engine(url)
        factory = make_sessionmaker(engine)
        figures = [{"seconds": [], "read": [], "longest": []} for _ in mailshot_ids]
        # Reset this process's RSS high-water mark (VmHWM): what follows is the snapshots.
        Path("/proc/self/clear_refs").write_text("5")
        threads = [
            threading.Thread(target=run, args=(factory, mailshot_id, args.repeat, args.single, f))
            for mailshot_id, f in zip(mailshot_ids, figures, strict=True)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        peak = self_peak_rss_mb()
        engine.dispose()
    if any(len(f["seconds"]) != args.repeat for f in figures):
        raise SystemExit("a snapshot failed (see above)")

    def rounded(key: str) -> list[float] | list[list[float]]:
        per = [[round(t, 3) for t in f[key]] for f in figures]
        return per[0] if args.parallel == 1 else per

    out = {
        "bench": "snapshot",
        "db": args.db,
        "recipients": args.recipients,
        "single": args.single,
        "dirty": args.dirty,
        "parallel": args.parallel,
        "pooled": not args.unpooled,
        "seconds": rounded("seconds"),
        "read_s": rounded("read"),
        "longest_write_tx_s": rounded("longest"),
        "wall_s": round(wall, 3),
        "peak_rss_mb": peak,
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
