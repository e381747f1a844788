"""Summarise a py-spy collapsed-stack profile: self time and inclusive time per function.

Usage: python bench/top.py PROFILE [--thread NAME] [--n 40]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
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
        threads[frames[0]] += n
        if args.thread and args.thread not in frames[0]:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames[1:]):
            incl[f] += n
    print("threads:", ", ".join(f"{t} {n}" for t, n in threads.most_common(12)))
    print(f"\nself ({total} samples)")
    for f, n in own.most_common(args.n):
        print(f"{100 * n / total:5.1f}%  {f}")
    print("\ninclusive")
    for f, n in incl.most_common(args.n):
        print(f"{100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
