"""Context switches per thread of a running process: which threads of `relay serve` switch.

Owns the per-thread view behind bench/throughput.py's "switches/msg" column. It waits for
a process whose command line contains MATCH (bench/throughput.py's relay runs from a temp
folder named relay-bench-relay-SIZE-CONNECTIONS-..., e.g. ``relay-1024-16``), reads every
thread's voluntary and involuntary context switches and CPU ticks from
/proc/PID/task/*/status and stat every half second until it exits, and prints them for
the busiest window (most CPU), with the threads' names from ``py-spy dump`` when py-spy is
installed (Python 3.11 gives its threads no OS names).

    python3 bench/thread_switches.py relay-1024-16 &
    python3 bench/throughput.py --snapshot --sizes 1k --connections 16 --messages 4000 --runs 1

(enough messages that the busiest window is not the start-up; on a shared machine, other
benchmarks' relays run from folders named the same way: start the watcher just before yours.)

Reading /proc twice a second costs the measured process nothing; py-spy dump is taken once.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import time
from pathlib import Path

Counters = dict[int, tuple[int, int, int]]  # tid -> (voluntary, involuntary, CPU ticks)


def find(match: str, skip: set[int]) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in words and any(match.encode() in word for word in words):
            return int(entry.name)
    return None


def counters(pid: int) -> Counters:
    found: Counters = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            stat = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        switches = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in switches:
                switches[key] = int(value)
        ticks = int(stat[11]) + int(stat[12])  # utime + stime
        found[int(task.name)] = (*switches.values(), ticks)  # type: ignore[assignment]
    return found


def names(pid: int) -> dict[int, str]:
    if shutil.which("py-spy") is None:
        return {}
    dump = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True)
    found = {}
    for line in dump.stdout.splitlines():
        if line.startswith("Thread "):  # Thread 4975 (active): "group-commit"
            tid, _, rest = line.removeprefix("Thread ").partition(" ")
            if tid.isdigit():
                found[int(tid)] = rest.rpartition(": ")[2].strip('"')
    return found


def watch(pid: int, window: int) -> None:
    samples: list[Counters] = []
    named: dict[int, str] = {}
    while Path(f"/proc/{pid}").exists():
        try:
            samples.append(counters(pid))
        except OSError:
            break
        if len(samples) == 2 * window + 2:  # under load by now: the threads all exist
            named = names(pid)
        time.sleep(0.5)
    steps = 2 * window
    if len(samples) <= steps:
        print(f"pid {pid}: ran too briefly ({len(samples)} samples)")
        return

    def cpu(start: int) -> int:
        before, after = samples[start], samples[start + steps]
        return sum(after[tid][2] - before.get(tid, (0, 0, 0))[2] for tid in after)

    start = max(range(len(samples) - steps), key=cpu)
    before, after = samples[start], samples[start + steps]
    print(f"pid {pid}: busiest {window} s, {cpu(start)} CPU ticks")
    total = [0, 0]
    for tid in sorted(after):
        was = before.get(tid, (0, 0, 0))
        voluntary, involuntary, ticks = (a - b for a, b in zip(after[tid], was, strict=True))
        total[0] += voluntary
        total[1] += involuntary
        if voluntary or involuntary or ticks:
            name = named.get(tid, "main" if tid == pid else "")
            print(f"  {tid:>8} {name:<14} voluntary {voluntary:>7} involuntary {involuntary:>7}")
    print(f"  all threads: voluntary {total[0]}, involuntary {total[1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("match", help="a piece of the relay's command line, e.g. relay-1024-16")
    parser.add_argument("--window", type=int, default=4, help="seconds (default 4)")
    parser.add_argument("--count", type=int, default=1, help="processes to watch (default 1)")
    options = parser.parse_args()
    seen: set[int] = set()
    while len(seen) < options.count:
        pid = find(options.match, seen)
        if pid is None:
            time.sleep(0.2)
            continue
        seen.add(pid)
        watch(pid, options.window)


if __name__ == "__main__":
    main()
