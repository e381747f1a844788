"""Summarise a py-spy collapsed-stack profile (``bench/sync.py --profile``): self time and
inclusive time per function, for one process and thread if asked.

The profile samples ``mailshot serve`` and the processes it starts (``--subprocesses``):
each stack begins with its process (``process PID:"command"``), then its thread.

Usage: python bench/top.py PROFILE [--process esp_process] [--thread NAME] [--n 40]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument(
        "--process", default="", help="only stacks of a process whose command has this"
    )
    parser.add_argument("--thread", default="")
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in Path(args.profile).read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        processes = [f for f in frames if f.startswith("process ")]
        frames = frames[len(processes) :]
        process = processes[-1] if processes else ""
        if args.process not in process or not frames:
            continue
        threads[f"{process.partition(':')[0]} {frames[0]}".strip()] += n
        if args.thread and args.thread not in frames[0]:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames[1:]):
            incl[f] += n
    print("threads:", ", ".join(f"{t} {n}" for t, n in threads.most_common(12)))
    print(f"\nself ({total} samples)")
    for f, n in own.most_common(args.n):
        print(f"{100 * n / max(total, 1):5.1f}%  {f}")
    print("\ninclusive")
    for f, n in incl.most_common(args.n):
        print(f"{100 * n / max(total, 1):5.1f}%  {f}")


if __name__ == "__main__":
    main()
