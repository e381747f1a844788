"""How fast a whole sync is: Synchronise to complete in the ESP, for N recipients.

Usage: python bench/sync.py --recipients N [--db sqlite|postgresql] [--workers W]
                            [--chunk-size C] [--shuffled-addresses]

Builds a fresh installation (SQLite files in a temporary folder, the embedded default, or
fresh PostgreSQL databases on 127.0.0.1:5432), bulk-inserts an audience of N people and a
mailshot, starts ``mailshot serve`` (CRM, ESP and the bridge in one process) as a user
would, presses Synchronise through the CRM API and polls (four times a second, as a page
would) until the mailshot is synchronised. ``seconds`` is the Synchronise request plus the
job's own ``requested_at`` to ``finished_at``, so the poll's pace does not change it. In the
same run it measures, as the reference, how fast the same N rows are bulk-inserted into a
fresh SQLite file (executemany in one transaction; the best of three runs, each printed to
stderr). The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import orjson
from _harness import (
    CrmApi,
    add_audience,
    audience_rows,
    bulk_insert_rate,
    cpu_used,
    installation,
    self_peak_rss_mb,
    serve,
    start_profile,
    stop_profile,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, required=True)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, help="bridge workers (default: the setting, 2)")
    parser.add_argument(
        "--chunk-size", type=int, help="recipients per chunk (default: the setting, 20,000)"
    )
    parser.add_argument(
        "--shuffled-addresses",
        action="store_true",
        help="addresses in no relation to the people's ids, as real ones are (see add_audience)",
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="the workers write to the ESP in the serve process itself (MAILSHOT_ESP_PROCESS="
        "false), not through the second process serve starts by default",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="record the server with py-spy (collapsed stacks)"
    )
    args = parser.parse_args()
    extra = {}
    if args.workers:
        extra["worker_concurrency"] = args.workers
    if args.chunk_size:
        extra["chunk_size"] = args.chunk_size
    if args.one_process:
        extra["esp_process"] = False

    with installation(args.db, **extra) as inst:
        t0 = time.perf_counter()
        mailshot_id = add_audience(inst, "bench", args.recipients, shuffled=args.shuffled_addresses)
        build_seconds = time.perf_counter() - t0
        print(f"audience of {args.recipients:,} built in {build_seconds:.1f} s", file=sys.stderr)
        with serve(inst) as served:
            api = CrmApi(inst)
            spy = start_profile(served.process.pid, args.profile) if args.profile else None
            cpu_before = served.cpu_seconds()
            started = time.perf_counter()
            request_seconds, _ = api.synchronise(mailshot_id)
            final = api.wait(mailshot_id)
            seen_seconds = time.perf_counter() - started
            at = api.job_times(int(final["job_id"]))
            seconds = api.seconds_to_finish(at, request_seconds)
            server_cpu = cpu_used(cpu_before, served.cpu_seconds())
            phases = api.phases(at)
            api.close()
            server_rss = served.peak_rss_mb()
            if spy is not None:
                stop_profile(spy)
        if final["state"] != "synchronised" or final["recipients_synced"] != args.recipients:
            raise SystemExit(f"the sync did not complete as expected: {final}")
        rows = audience_rows(inst, mailshot_id)
        reference = bulk_insert_rate(inst.folder, rows)
        del rows

    rate = args.recipients / seconds
    out = {
        "bench": "sync",
        "db": args.db,
        "recipients": args.recipients,
        "workers": args.workers or inst.settings.worker_concurrency,
        "chunk_size": inst.settings.chunk_size,
        "addresses": "shuffled" if args.shuffled_addresses else "in id order",
        "seconds": round(seconds, 3),
        "seconds_seen_by_polling": round(seen_seconds, 3),
        "recipients_per_second": round(rate),
        "phases_seconds": phases,
        "synchronise_request_ms": round(request_seconds * 1000, 1),
        "bulk_insert_per_second": round(reference),
        "ratio_to_bulk_insert": round(rate / reference, 3),
        "cpu_seconds": server_cpu,
        "peak_rss_mb": {**server_rss, "bench (this script)": self_peak_rss_mb()},
        "audience_build_seconds": round(build_seconds, 1),
        "cpus": os.cpu_count(),
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
