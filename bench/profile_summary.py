"""Summarise a py-spy raw (collapsed stacks) profile: the top functions by own and total samples.

python3 bench/profile_summary.py PROFILE.txt [--top 25]
"""

from __future__ import annotations

import argparse
import collections
import re
import sys

# py-spy frames look like "function (path/to/file.py:123)"; the line is dropped so a
# function counts once.
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match.group("file")
    short = "/".join(path.split("/")[-2:])
    return f"{match.group('name')} ({short})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    arguments = parser.parse_args()
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    with open(arguments.profile) as lines:
        for line in lines:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [frame_name(f) for f in stack.split(";") if f]
            if not frames or ("process " in frames[0] and len(frames) == 1):
                continue
            samples += count
            own[frames[-1]] += count
            for name in set(frames):
                total[name] += count
    print(f"{samples} samples (all threads)")
    for title, counter in (("own", own), ("total (inclusive)", total)):
        print(f"\ntop {arguments.top} by {title}:")
        for name, count in counter.most_common(arguments.top):
            print(f"{100 * count / samples:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
