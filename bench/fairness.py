"""Is a small sync served while big ones run? p50 and p95 seconds for a 100-recipient
mailshot to complete (Synchronise to synchronised) with nothing else running, and while
three large syncs (1,000,000 recipients each by default) run.

Usage: python bench/fairness.py [--db sqlite|postgresql] [--large 1000000] [--small 100]
                                [--runs 10] [--workers W]

Builds a fresh installation (bulk inserts), starts ``mailshot serve`` (the embedded
default), syncs the small mailshot ``--runs`` times alone, then presses Synchronise on the
three large mailshots and syncs the small one ``--runs`` times again while they run. The
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import orjson
from _harness import CrmApi, add_audience, installation, percentile, serve


def timed_syncs(
    api: CrmApi, mailshot_id: int, runs: int, busy: list[int]
) -> tuple[list[float], list[dict[str, float]]]:
    """Seconds from Synchronise to synchronised, and the job's phases, ``runs`` times; only
    runs during which every ``busy`` mailshot was still synchronising count (others are
    repeated)."""
    out: list[float] = []
    phases: list[dict[str, float]] = []
    attempts = 0
    while len(out) < runs and attempts < runs * 3:
        attempts += 1
        request_seconds, _ = api.synchronise(mailshot_id)
        final = api.wait(mailshot_id, timeout=120, poll=0.05)
        at = api.job_times(int(final["job_id"]))
        if final["state"] != "synchronised":
            raise SystemExit(f"the small sync did not complete: {final}")
        if all(api.status(m)["state"] in ("queued", "synchronising") for m in busy):
            out.append(api.seconds_to_finish(at, request_seconds))
            phases.append(api.phases(at))
    return out, phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workers", type=int)
    parser.add_argument(
        "--chunk-size", type=int, help="recipients per chunk (default: the setting, 20,000)"
    )
    args = parser.parse_args()
    extra: dict[str, int] = {"worker_concurrency": args.workers} if args.workers else {}
    if args.chunk_size:
        extra["chunk_size"] = args.chunk_size
    with installation(args.db, **extra) as inst:
        small = add_audience(inst, "small", args.small)
        large = [add_audience(inst, f"large{i}", args.large) for i in range(3)]
        with serve(inst) as served:
            api = CrmApi(inst)
            alone, alone_phases = timed_syncs(api, small, args.runs, [])
            for m in large:
                api.synchronise(m)
            time.sleep(1.0)  # let the large syncs get going
            loaded, loaded_phases = timed_syncs(api, small, args.runs, large)
            states = [api.status(m)["state"] for m in large]
            for m in large:  # stop them: the figures are taken
                api.http.post(f"/mailshots/{m}/sync/cancel")
            api.close()
            rss = served.peak_rss_mb()
    if len(loaded) < args.runs:
        print(f"only {len(loaded)} runs overlapped the large syncs (states {states})")

    def stats(values: list[float], phases: list[dict[str, float]]) -> dict[str, Any]:
        if not values:
            return {"runs": 0}
        names = sorted({name for p in phases for name in p})
        return {
            "runs": len(values),
            "p50_seconds": round(percentile(values, 50), 3),
            "p95_seconds": round(percentile(values, 95), 3),
            "max_seconds": round(max(values), 3),
            "p50_phases_seconds": {
                n: round(percentile([p[n] for p in phases if n in p], 50), 3) for n in names
            },
        }

    out = {
        "bench": "fairness",
        "db": args.db,
        "small_recipients": args.small,
        "large_recipients": args.large,
        "large_syncs": 3,
        "workers": args.workers or inst.settings.worker_concurrency,
        "chunk_size": inst.settings.chunk_size,
        "alone": stats(alone, alone_phases),
        "beside_three_large_syncs": stats(loaded, loaded_phases),
        "peak_rss_mb": rss,
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
