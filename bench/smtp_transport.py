"""Measure the SMTP engine's transport against Postfix's own client, to Postfix's sink.

Usage: python bench/smtp_transport.py [--messages N] [--size S] [--connections C]
           [--processes P] [--runs R] [--loop uvloop|asyncio] [--per-connection M] [--raw]
           [--profile FILE]

Each run starts a fresh ``smtp-sink`` (Postfix's C SMTP server, which throws mail away) on
a free 127.0.0.1 port and times ``smtp-source -d -N -s C -m N -l S`` (N messages with an S
byte body over C connections kept open, a distinct recipient each); then a fresh sink
again and the engine (:class:`mailshot.esp.sending.engine.SmtpSender`, no rate limit, no
database) sending N envelopes of a pre-built message of the same size (smtp-source's
headers and S bytes of body, distinct recipients; ``wire_ready`` unless ``--raw``, which
makes the engine check line ends and dots itself) over C connections, in P processes that
share the work (C/P connections and N/P messages each) and start together. Both counts
are checked with the sink's own counter (``-c``). Prints one JSON line: the median of the
R runs of each rate, their ratio, our processes' CPU seconds and peak RSS, every run.
``--profile FILE``: one engine run under py-spy (one process): a flame graph if FILE ends
in .svg, else collapsed stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
FROM, TO = "sender@bench.test", "rcpt@bench.test"


_CHILDREN: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []


@atexit.register
def _end_children() -> None:
    """Sinks and workers still running when the benchmark ends (on an error) are stopped."""
    for child in _CHILDREN:
        if child.poll() is None:
            child.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> list[str]:
    return ["-u", "nobody"] if os.geteuid() == 0 else []


class Sink:
    """A fresh smtp-sink; ``count()`` stops it and says how many messages it took."""

    def __init__(self) -> None:
        self.port = free_port()
        # its counters go to a file: a pipe would fill up and stall it
        self.out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in count()
        self.proc = subprocess.Popen(
            [SINK, "-c", *_as_user(), f"127.0.0.1:{self.port}", "1024"],
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )
        _CHILDREN.append(self.proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("smtp-sink did not start")

    def count(self) -> int:
        time.sleep(0.2)  # let it print the counters of the sessions that just ended
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.out.seek(0)
        counts = re.findall(rb"mesg=(\d+)", self.out.read())
        self.out.close()
        return int(counts[-1]) if counts else 0


def message(size: int) -> bytes:
    """smtp-source's message shape: four header lines, then ``size`` bytes of body in
    lines of 79 characters."""
    head = (
        f"From: <{FROM}>\r\nTo: <{TO}>\r\nDate: Fri, 4 Dec 2026 04:08:50 +0000\r\n"
        "Message-Id: <21c6.0003.0000@bench.test>\r\n\r\n"
    ).encode()
    lines, left, n = [], size, 1
    while left > 0:
        line = (str(n) + "X" * 78)[: min(79, left)]
        lines.append(line.encode() + b"\r\n")
        left -= len(line) + 1
        n += 1
    return head + b"".join(lines)


def run_source(n: int, size: int, connections: int) -> dict[str, float]:
    sink = Sink()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    options = ["-d", "-N", "-s", str(connections), "-m", str(n), "-l", str(size)]
    options += ["-f", FROM, "-t", TO, "-M", "bench.test"]
    subprocess.run([SOURCE, *options, f"127.0.0.1:{sink.port}"], check=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = sink.count()
    if got != n:
        raise RuntimeError(f"smtp-sink took {got} messages of smtp-source's {n}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"msgs_per_s": round(n / elapsed, 1), "seconds": round(elapsed, 3), "cpu_s": cpu}


def run_engine(args: argparse.Namespace, profile: str | None = None) -> dict[str, object]:
    sink = Sink()
    p = args.processes
    shares = [args.messages // p + (1 if i < args.messages % p else 0) for i in range(p)]
    conns = [
        max(1, args.connections // p + (1 if i < args.connections % p else 0)) for i in range(p)
    ]
    workers, first = [], 0
    for share, c in zip(shares, conns, strict=True):
        cmd = [sys.executable, str(Path(__file__)), "--worker", str(sink.port), str(first)]
        cmd += [str(share), str(args.size), str(c), args.loop, str(args.per_connection)]
        cmd += ["raw" if args.raw else "ready"]
        if profile:
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            form = "flamegraph" if profile.endswith(".svg") else "raw"
            native = ["--native"] if os.environ.get("BENCH_NATIVE") else []
            cmd = [spy, "record", "-o", profile, "-f", form, "-r", "250", *native, "--", *cmd]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        workers.append(
            subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        )
        _CHILDREN.append(workers[-1])
        first += share
    for w in workers:
        assert w.stdout is not None
        while (line := w.stdout.readline()) and line.strip() != "ready":
            pass  # py-spy's own lines
        if not line:
            raise RuntimeError("a worker did not start")
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    reports = [
        json.loads([x for x in w.communicate(timeout=600)[0].splitlines() if x[:1] == "{"][-1])
        for w in workers
    ]
    got = sink.count()
    sent = sum(r["sent"] for r in reports)
    if got != args.messages or sent != args.messages:
        raise RuntimeError(f"sink took {got}, engine reported {sent} sent of {args.messages}")
    elapsed = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return {
        "msgs_per_s": round(args.messages / elapsed, 1),
        "seconds": round(elapsed, 3),
        "cpu_s": [round(r["cpu_s"], 2) for r in reports],
        "peak_rss_mb": [r["peak_rss_mb"] for r in reports],
    }


def worker(
    port: int, first: int, n: int, size: int, connections: int, loop: str, per: int, raw: bool
) -> None:
    """One engine process: build the envelopes, say ready, send when told, report."""
    from mailshot.esp.sending.engine import SmtpSender
    from mailshot.esp.sending.outcomes import Envelope
    from mailshot.esp.sending.relays import RelaySettings

    relay = RelaySettings(
        name="sink",
        host="127.0.0.1",
        port=port,
        security="none",
        connections=connections,
        messages_per_connection=per,
        max_per_domain=10_000,
        local_hostname="bench.test",
    )
    data = message(size)
    envelopes = [
        Envelope(first + i, FROM, f"{first + i}{TO}", data, wire_ready=not raw) for i in range(n)
    ]
    if loop == "uvloop":
        import uvloop

        uvloop.install()
    print("ready", flush=True)
    sys.stdin.readline()

    async def send() -> dict[str, object]:
        outcomes: dict[str, int] = {}
        async with SmtpSender([relay], max_pending=4 * connections + 64) as sender:

            async def feed() -> None:
                for envelope in envelopes:
                    await sender.submit(envelope)
                sender.close()

            feeder = asyncio.create_task(feed())
            while batch := await sender.wait_results():  # as a ledger writer takes them
                for result in batch:
                    outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
            await feeder
        return outcomes

    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.time()
    outcomes = asyncio.run(send())
    end = time.time()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    report = {
        "sent": outcomes.get("sent", 0),
        "outcomes": outcomes,
        "start": start,
        "end": end,
        "cpu_s": cpu,
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
    }
    print(json.dumps(report), flush=True)


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        a = sys.argv[2:]
        worker(
            int(a[0]), int(a[1]), int(a[2]), int(a[3]), int(a[4]), a[5], int(a[6]), a[7] == "raw"
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=10_240)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    parser.add_argument("--per-connection", type=int, default=0, help="0: like smtp-source -d")
    parser.add_argument("--raw", action="store_true", help="envelopes not wire_ready")
    parser.add_argument("--profile")
    args = parser.parse_args()
    if args.profile:
        args.processes = 1
        print(json.dumps(run_engine(args, profile=args.profile)))
        return
    source_runs, engine_runs = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine
        source_runs.append(run_source(args.messages, args.size, args.connections))
        engine_runs.append(run_engine(args))
    source = statistics.median(r["msgs_per_s"] for r in source_runs)
    engine = statistics.median(float(r["msgs_per_s"]) for r in engine_runs)  # type: ignore[arg-type]
    median_run = sorted(engine_runs, key=lambda r: float(r["msgs_per_s"]))[len(engine_runs) // 2]  # type: ignore[arg-type]
    print(
        json.dumps(
            {
                "messages": args.messages,
                "size": args.size,
                "connections": args.connections,
                "processes": args.processes,
                "loop": args.loop,
                "wire_ready": not args.raw,
                "smtp_source_msgs_per_s": source,
                "engine_msgs_per_s": engine,
                "ratio_to_smtp_source": round(engine / source, 3),
                "engine_cpu_s": median_run["cpu_s"],
                "engine_peak_rss_mb": max(max(r["peak_rss_mb"]) for r in engine_runs),  # type: ignore[call-overload]
                "runs": {"smtp_source": source_runs, "engine": engine_runs},
            }
        )
    )


if __name__ == "__main__":
    main()
