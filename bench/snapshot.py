"""How long the CRM's audience snapshot takes, alone (no server): the service
``mailshot.crm.services.audience.snapshot`` over a mailing list of N people.

Usage: python bench/snapshot.py --recipients N [--db sqlite|postgresql] [--repeat R]

Builds a fresh installation, bulk-inserts the audience, creates a sync job row and times
``snapshot()`` R times (each replaces the previous one) plus the commit. The last line
printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import sys
import time

import orjson
from _harness import add_audience, installation
from sqlalchemy import insert
from sqlalchemy.orm import Session

from mailshot.clock import utcnow
from mailshot.crm.models import Mailshot, SyncJob
from mailshot.crm.services import audience
from mailshot.db import make_sessionmaker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, required=True)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--single", action="store_true", help="one transaction (no checkpoint), as before"
    )
    args = parser.parse_args()
    with installation(args.db) as inst:
        mailshot_id = add_audience(inst, "bench", args.recipients)
        engine = inst.crm_engine()
        factory = make_sessionmaker(engine)
        times: list[float] = []
        longest_tx: list[float] = []
        with factory() as s:
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
            for _ in range(args.repeat):
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
                if args.single:
                    counts = audience.snapshot(s, job_id, mailshot)
                else:
                    counts = audience.snapshot(s, job_id, mailshot, checkpoint=checkpoint)
                s.commit()
                steps.append(time.perf_counter() - mark[0])
                times.append(time.perf_counter() - t0)
                # steps[1] is the read (no write lock); the others are write transactions.
                longest = max(steps[2:] or steps)
                longest_tx.append(longest)
                print(
                    f"snapshot {times[-1]:.2f} s, {len(steps)} steps, read "
                    f"{steps[1] if len(steps) > 1 else 0:.2f} s, longest write {longest:.3f} s:"
                    f" {counts}",
                    file=sys.stderr,
                )
        engine.dispose()
    out = {
        "bench": "snapshot",
        "db": args.db,
        "recipients": args.recipients,
        "single": args.single,
        "seconds": [round(t, 3) for t in times],
        "longest_write_tx_s": [round(t, 3) for t in longest_tx],
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
