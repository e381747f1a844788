"""``python -m mailshot.bridge``: run a worker pool until SIGTERM or SIGINT.

Settings come from ``MAILSHOT_*`` variables (URLs, keys, heartbeat); the options below
override the pool's own knobs.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mailshot.bridge.errors import BridgeConfigError
from mailshot.bridge.worker import WorkerPool
from mailshot.core.logs import configure as configure_logging
from mailshot.core.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailshot.bridge", description=__doc__)
    parser.add_argument("--concurrency", type=int, help="Units worked at once (threads).")
    parser.add_argument("--timeout", type=float, help="Seconds to wait for the CRM or ESP.")
    parser.add_argument("--worker-id", help="Name of this worker (default: host:pid:random).")
    args = parser.parse_args(argv)
    settings = Settings()
    configure_logging(settings)
    overrides: dict[str, Any] = {}
    if args.concurrency:
        overrides["concurrency"] = args.concurrency
    if args.timeout:
        overrides["http_timeout_seconds"] = args.timeout
    if args.worker_id:
        overrides["worker_id"] = args.worker_id
    try:
        pool = WorkerPool.from_settings(settings, **overrides)
    except BridgeConfigError as exc:
        print(f"mailshot bridge: {exc}", file=sys.stderr)
        return 2
    pool.run_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
