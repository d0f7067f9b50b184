"""Summarise py-spy's collapsed stacks (`--format raw`): where a process spends its samples.

    python -m bench.stacks FILE [--top 30]

Prints the functions with the largest share of samples inclusive (anywhere on the stack) and
exclusive (on top of the stack), so the hot path's costs can be named with figures.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

LINE_NUMBER = re.compile(r":\d+\)$")


def summarise(text: str) -> tuple[int, Counter[str], Counter[str]]:
    total = 0
    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [LINE_NUMBER.sub(")", f) for f in stack.split(";")]  # one entry per function
        for frame in set(frames):
            inclusive[frame] += n
        exclusive[frames[-1]] += n
    return total, inclusive, exclusive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    total, inclusive, exclusive = summarise(args.file.read_text())
    print(f"{total} samples")
    for title, counter in (("inclusive", inclusive), ("exclusive", exclusive)):
        print(f"\\n{title}:")
        for frame, n in counter.most_common(args.top):
            print(f"  {100 * n / total:5.1f} %  {frame}")


if __name__ == "__main__":
    main()
