"""How long the Synchronise request takes: p50 and p95 latency for audiences of 100 and of
1,000,000 (the request queues the sync and answers; nothing O(audience) happens in it).

Usage: python bench/request.py [--db sqlite|postgresql] [--requests 40]
                               [--sizes 100,1000000] [--with-workers]

Builds a fresh installation with one mailshot per audience size (bulk inserts), starts
``mailshot serve`` and presses Synchronise ``--requests`` times per mailshot, each press
superseding the previous sync. By default the server runs without bridge workers, so each
figure is the request alone; ``--with-workers`` keeps the embedded workers on, so the
requests compete with the syncs they start. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import time

import orjson
from _harness import CrmApi, add_audience, installation, percentile, serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--sizes", default="100,1000000")
    parser.add_argument("--with-workers", action="store_true")
    parser.add_argument(
        "--chunk-size", type=int, help="recipients per chunk (default: the setting, 20,000)"
    )
    args = parser.parse_args()
    extra = {"chunk_size": args.chunk_size} if args.chunk_size else {}
    sizes = [int(s) for s in args.sizes.split(",")]
    figures: dict[str, dict[str, float]] = {}
    with installation(args.db, **extra) as inst:
        mailshots = {n: add_audience(inst, f"a{n}", n) for n in sizes}
        with serve(inst, *(() if args.with_workers else ("--no-worker",))) as served:
            api = CrmApi(inst)
            for n, mailshot_id in mailshots.items():
                api.synchronise(mailshot_id)  # warm up this mailshot's path once
                latencies = []
                for _ in range(args.requests):
                    seconds, _status = api.synchronise(mailshot_id)
                    latencies.append(seconds * 1000)
                    time.sleep(0.05)
                figures[str(n)] = {
                    "p50_ms": round(percentile(latencies, 50), 1),
                    "p95_ms": round(percentile(latencies, 95), 1),
                    "max_ms": round(max(latencies), 1),
                }
            api.close()
            rss = served.peak_rss_mb()
    out = {
        "bench": "request",
        "db": args.db,
        "workers": bool(args.with_workers),
        "chunk_size": inst.settings.chunk_size,
        "requests_per_size": args.requests,
        "latency_by_audience": figures,
        "peak_rss_mb": rss,
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
