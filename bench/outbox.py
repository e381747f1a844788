"""The Outbox's intake rate: Postfix's ``smtp-source`` (a C client, so the client is not
the bottleneck) sends N messages of a given size over C connections to the real capture
server (its own SQLite or PostgreSQL database), and this prints one JSON line: messages
per second, the batches committed (messages per transaction) and what was kept.

    .venv/bin/python bench/outbox.py --messages 20000 --connections 10 [--db postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from mailshot.core.db.engine import make_sessionmaker, make_unpooled_engine
from mailshot.core.db.migrate import upgrade
from mailshot.core.settings import Settings
from mailshot.esp.outbox.server import OutboxServer
from mailshot.esp.services import outbox

PG = os.environ.get(
    "MAILSHOT_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--connections", type=int, default=10)
    ap.add_argument("--size", type=int, default=4096, help="bytes of each message")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = ap.parse_args()
    source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not Path(source).exists():
        sys.exit("smtp-source not found: apt-get install postfix")
    folder = Path(tempfile.mkdtemp(prefix="outbox-bench-"))
    values: dict[str, object] = {
        "data_dir": folder,
        "outbox_smtp_port": 0,
        "outbox_max_connections": max(args.connections, 1),
    }
    name = f"outbox_bench_{os.getpid()}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT") if args.db == "postgresql" else None
    if admin is not None:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        values["esp_database_url"] = PG.rpartition("/")[0] + f"/{name}"
    settings = Settings(_env_file=None, outbox_keep_messages=max(args.messages, 1), **values)  # type: ignore[arg-type]
    try:
        upgrade("esp", settings.esp_db_url())
        server = OutboxServer(settings)
        server.start()
        started = time.perf_counter()
        command = [source, "-c", "-d", "-s", str(args.connections), "-m", str(args.messages)]
        command += ["-l", str(args.size), "-f", "bench@example.com", "-t", "sink@example.net"]
        try:
            subprocess.run(
                [*command, f"127.0.0.1:{server.port}"], check=True, stdout=subprocess.DEVNULL
            )
            seconds = time.perf_counter() - started
        finally:
            server.stop()
        engine = make_unpooled_engine(settings.esp_db_url())
        with make_sessionmaker(engine)() as s:
            kept = outbox.totals(s)
        engine.dispose()
        print(
            json.dumps(
                {
                    "db": args.db,
                    "messages": args.messages,
                    "connections": args.connections,
                    "size": args.size,
                    "seconds": round(seconds, 2),
                    "messages_per_second": round(args.messages / seconds),
                    "batches": server.writer.batches,
                    "messages_per_batch": round(args.messages / max(server.writer.batches, 1), 1),
                    "kept": kept.messages,
                }
            )
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if admin is not None:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
