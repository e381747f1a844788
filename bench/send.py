"""Measure a whole send against the transport's own limit, to Postfix's sink.

Usage: python bench/send.py --recipients N [--connections C] [--processes P]
           [--workers W] [--db sqlite|postgresql] [--rate R] [--per-connection M]
           [--window W] [--batch-size B] [--profile FILE]

A fresh installation (bench/_harness.py), and in its ESP database, written set-based
(INSERT ... SELECT over a generated series, not the API per contact): N contacts spread
over a few domains, an Integrated Campaign with a ~10 KB HTML and text message with
10 tracked links and merge fields (bench/compose.py's), its audience finalised. Then:

1. smtp-source: a fresh ``smtp-sink`` on a free port, and Postfix's ``smtp-source``
   sending N messages of the size of one rendered message over C connections kept open
   (bench/smtp_transport.py's ``run_source``);
2. the pipeline: a fresh sink, P ``mailshot send-worker --workers W`` processes pointed
   at it as the relay (C connections in all: C/P each), started and idle first; then the
   send is started through the service (``sends.start``: preflight, ledger, units) and
   the clock runs from just before that call to the send's ``finished_at``;
3. smtp-source again (the transport's rate may drift on a shared machine: the higher of
   the two runs is the reference, so the ratio is never flattered).

Checks: the send is ``sent``, the ledger holds N ``sent``, the sink counted N messages.
Prints one JSON line: both rates, ``ratio_to_smtp_source``, CPU seconds and peak RSS of
the bench process and of each worker (from /proc), the ledger's counts, the load average
at the start. ``--rate R``: the relay's messages per second (the database rate limit
shared by the workers; default 0, unlimited). ``--profile FILE``: py-spy records every
worker (FILE.<pid>, collapsed stacks; summarise with bench/top.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from _harness import cpu_seconds, installation, peak_rss_mb, self_peak_rss_mb, start_profile
from _harness import stop_profile as _stop_profile
from compose import campaign as bench_content
from smtp_transport import Sink, run_source
from sqlalchemy import String, cast, func, insert, literal, literal_column, select
from sqlalchemy import text as sql_text

from mailshot.core.clock import utcnow
from mailshot.core.db.engine import UTCDateTime, make_sessionmaker, make_unpooled_engine
from mailshot.esp.models import Campaign, CampaignRecipient, Contact, Send, SendRecipient
from mailshot.esp.sending import compose
from mailshot.esp.sending.config import send_context
from mailshot.esp.sending.model import Recipient
from mailshot.esp.services import sends

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = 8
CRM_MAILSHOT_ID = 1


def series(engine: Any, n: int) -> Any:
    """``SELECT i`` for i in 0..n-1, as a FROM clause."""
    if engine.dialect.name == "postgresql":
        return (
            select(literal_column("i").label("i"))
            .select_from(sql_text(f"generate_series(0, {n - 1}) AS i"))
            .subquery("series")
        )
    cte = select(literal_column("0").label("i")).cte("series", recursive=True)
    return cte.union_all(select(cte.c.i + 1).where(cte.c.i < n - 1))


def build_campaign(url: str, n: int) -> None:
    """N contacts (``r<i>@d<i % DOMAINS>.example.org``, names First<i> Last<i>), the
    campaign with its audience finalised (snapshot 1), in one transaction."""
    engine = make_unpooled_engine(url)
    now = utcnow()
    stamp = literal(now, UTCDateTime())
    s = series(engine, n)
    number = cast(s.c.i, String)
    address = (
        literal("r")
        + number
        + literal("@d")
        + cast(s.c.i % DOMAINS, String)
        + literal(".example.org")
    )
    content = bench_content()
    contacts = Contact.__table__
    with engine.begin() as conn:
        conn.execute(
            insert(contacts).from_select(
                [
                    "email",
                    "email_normalised",
                    "first_name",
                    "last_name",
                    "crm_person_id",
                    "opt_in",
                    "created_at",
                    "updated_at",
                ],
                select(
                    address,
                    address,
                    literal("First") + number,
                    literal("Last") + number,
                    s.c.i + 1,
                    literal(True),
                    stamp,
                    stamp,
                ),
            )
        )
        campaign_id = conn.execute(
            insert(Campaign.__table__)
            .values(
                crm_mailshot_id=CRM_MAILSHOT_ID,
                crm_mailshot_uid=uuid.uuid4(),
                name=f"Bench send ({n:,} recipients)",
                campaign_type="integrated",
                subject=content.subject,
                from_name=content.from_name,
                from_address=content.from_address,
                reply_to=content.reply_to,
                html=content.html,
                text=content.text,
                status="ready",
                current_snapshot=1,
                finalised_snapshot=1,
                audience_needs_prune=False,
                audience_count=n,
                suppressed_count=0,
                duplicate_count=0,
                finalised_at=now,
                created_at=now,
                updated_at=now,
            )
            .returning(Campaign.__table__.c.id)
        ).scalar_one()
        conn.execute(
            insert(CampaignRecipient.__table__).from_select(
                ["campaign_id", "contact_id", "snapshot", "crm_person_id"],
                select(literal(campaign_id), contacts.c.id, literal(1), contacts.c.crm_person_id),
            )
        )
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sql_text("ANALYZE"))
    engine.dispose()


def message_size(settings: Any) -> int:
    """Bytes of one rendered message of the campaign (as the workers will make them)."""
    compiled = compose.compile_message(bench_content(), send_context(settings, 1))
    person = Recipient(
        recipient_id=1, contact_id=1, crm_person_id=1, email="r1@d1.example.org",
        first_name="First1", last_name="Last1",
    )  # fmt: skip
    return len(compiled.render(person).data)


def relay_json(port: int, connections: int, args: argparse.Namespace) -> str:
    return json.dumps(
        [
            {
                "name": "sink",
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "connections": connections,
                "messages_per_connection": args.per_connection,
                "messages_per_second": args.rate,
                "local_hostname": "bench.test",
            }
        ]
    )


def start_workers(inst: Any, port: int, args: argparse.Namespace) -> list[subprocess.Popen[bytes]]:
    """P ``mailshot send-worker`` processes, C/P connections each; waits for their banner."""
    exe = Path(sys.executable).with_name("mailshot")
    p = args.processes
    workers = []
    for i in range(p):
        connections = max(1, args.connections // p + (1 if i < args.connections % p else 0))
        env = {**inst.env, "MAILSHOT_SMTP_RELAYS": relay_json(port, connections, args)}
        env["MAILSHOT_LOG_LEVEL"] = "WARNING"
        log = (inst.folder / f"worker-{i}.log").open("wb")
        cmd = [str(exe), "send-worker", "--workers", str(args.workers)]
        workers.append(
            subprocess.Popen(cmd, env=env, cwd=inst.folder, stdout=log, stderr=subprocess.STDOUT)
        )
    deadline = time.monotonic() + 60
    for i, w in enumerate(workers):
        log_path = inst.folder / f"worker-{i}.log"
        while "Press Ctrl-C to stop." not in log_path.read_text(errors="replace"):
            if w.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"send worker {i} did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.terminate()
    for w in workers:
        try:
            w.wait(20)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def ledger_counts(sessions: Any, send_id: int) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(
            select(SendRecipient.state, func.count())
            .where(SendRecipient.send_id == send_id)
            .group_by(SendRecipient.state)
        ).all()
        return {str(state): int(n) for state, n in rows}


def run_pipeline(inst: Any, args: argparse.Namespace) -> dict[str, Any]:
    sink = Sink()
    workers = start_workers(inst, sink.port, args)
    spies = []
    if args.profile:
        spies = [start_profile(w.pid, f"{args.profile}.{w.pid}") for w in workers]
    engine = make_unpooled_engine(inst.settings.esp_db_url())
    sessions = make_sessionmaker(engine)
    settings = inst.settings.model_copy(update={"smtp_relays": []})
    try:
        cpu_before = {w.pid: cpu_seconds(w.pid) or 0.0 for w in workers}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.time()
        with sessions() as session:
            send = sends.start(session, settings, CRM_MAILSHOT_ID, requested_by="bench")
            send_id = int(send.id)
        start_seconds = time.time() - started
        deadline = time.monotonic() + args.timeout
        while True:
            with sessions() as session:
                state, finished_at = session.execute(
                    select(Send.state, Send.finished_at).where(Send.id == send_id)
                ).one()
            if state in ("sent", "cancelled", "failed"):
                break
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a send worker exited during the send")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the send did not end in {args.timeout} s (state {state})")
            time.sleep(0.25)
        after = resource.getrusage(resource.RUSAGE_SELF)
        worker_cpu = {
            str(w.pid): round((cpu_seconds(w.pid) or 0.0) - cpu_before[w.pid], 1) for w in workers
        }
        worker_rss = {str(w.pid): peak_rss_mb(w.pid) for w in workers}
        counts = ledger_counts(sessions, send_id)
    finally:
        for spy in spies:
            _stop_profile(spy)
        stop_workers(workers)
        engine.dispose()
    got = sink.count()
    if finished_at is None:
        raise RuntimeError(f"the send ended {state} without a finish time")
    seconds = finished_at.replace(tzinfo=UTC).timestamp() - started
    bench_cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return {
        "state": state,
        "seconds": round(seconds, 3),
        "start_seconds": round(start_seconds, 3),
        "msgs_per_s": round(args.recipients / seconds, 1),
        "sink_count": got,
        "ledger": counts,
        "cpu_seconds": {"bench": round(bench_cpu, 1), **worker_cpu},
        "peak_rss_mb": {"bench": self_peak_rss_mb(), **worker_rss},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2, help="send-worker processes")
    parser.add_argument("--workers", type=int, default=1, help="runners per process")
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rate", type=float, default=0.0, help="relay messages/s (0: none)")
    parser.add_argument(
        "--per-connection", type=int, default=100, help="messages per connection (the default)"
    )
    parser.add_argument("--window", type=int, help="send_window (default: the setting's)")
    parser.add_argument("--batch-size", type=int, help="send_batch_size (default: the setting's)")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--profile", metavar="FILE")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    extra = {}
    if args.window:
        extra["send_window"] = args.window
    if args.batch_size:
        extra["send_batch_size"] = args.batch_size
    with installation(args.db, **extra) as inst:
        t0 = time.perf_counter()
        build_campaign(inst.settings.esp_db_url(), args.recipients)
        build_seconds = time.perf_counter() - t0
        print(f"campaign of {args.recipients:,} built in {build_seconds:.1f} s", file=sys.stderr)
        size = message_size(inst.settings)
        source = [run_source(args.recipients, size, args.connections)]
        pipeline = run_pipeline(inst, args)
        source.append(run_source(args.recipients, size, args.connections))
    n = args.recipients
    if pipeline["state"] != "sent" or pipeline["ledger"] != {"sent": n}:
        raise SystemExit(f"the send did not end with {n} sent: {pipeline}")
    if pipeline["sink_count"] != n:
        raise SystemExit(f"smtp-sink counted {pipeline['sink_count']} messages, not {n}")
    reference = max(r["msgs_per_s"] for r in source)
    out = {
        "bench": "send",
        "db": args.db,
        "recipients": n,
        "connections": args.connections,
        "processes": args.processes,
        "workers_per_process": args.workers,
        "rate_limit": args.rate,
        "messages_per_connection": args.per_connection,
        "send_window": inst.settings.send_window,
        "send_batch_size": inst.settings.send_batch_size,
        "message_bytes": size,
        "msgs_per_s": pipeline["msgs_per_s"],
        "smtp_source_msgs_per_s": reference,
        "ratio_to_smtp_source": round(pipeline["msgs_per_s"] / reference, 3),
        "seconds": pipeline["seconds"],
        "start_seconds": pipeline["start_seconds"],
        "ledger": pipeline["ledger"],
        "cpu_seconds": pipeline["cpu_seconds"],
        "peak_rss_mb": pipeline["peak_rss_mb"],
        "smtp_source_runs": source,
        "build_seconds": round(build_seconds, 1),
        "load_average_at_start": round(load, 2),
        "commit": commit,
        "cpus": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    if shutil.which("smtp-sink") is None and not Path("/usr/sbin/smtp-sink").exists():
        raise SystemExit("smtp-sink is not installed (Debian package postfix)")
    main()
