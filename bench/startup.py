"""Start-up cost of the command line: `relay --help` and `relay status` against `import click`.

Every `relay` command pays for the imports of its module chain before it does
any work; the baseline is the least any click program pays, `python -c
"import click"`, timed in the same run. The commands run interleaved
(baseline, --help, status, baseline, ...) so that the load of a shared
machine falls on all of them alike; each figure is the median wall time of
the runs, and the ratio is that median over the baseline's median. Besides
the two the target names, it times the other commands people run often:
`relay --version`, `relay queue` and `relay held` (reported, no target).

The database commands run against a temporary relay.toml whose database was
brought to head with `relay db upgrade` first (not timed): a SQLite file in
a temporary folder, or with --database-url a PostgreSQL database (which must
be one you may upgrade). `relay status` exits 1 there (no daemon runs), as
it would on a stopped relay.

    python3 bench/startup.py              # 15 runs of each, SQLite
    python3 bench/startup.py --runs 7
    python3 bench/startup.py --database-url postgresql+psycopg://user:pw@127.0.0.1/db
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 3.0  # the target: under 3x the baseline
BASELINE = 'python -c "import click"'
TARGETED = ("relay --help", "relay status")


def _relay_command() -> list[str]:
    """The installed `relay` script beside this Python, else the one on PATH."""
    beside = Path(sys.executable).with_name("relay")
    found = str(beside) if beside.exists() else shutil.which("relay")
    if found is None:
        sys.exit("no `relay` command: pip install . first")
    return [found]


def _timed(argv: list[str], cwd: Path, allowed: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in allowed:
        sys.exit(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (>= 5)")
    parser.add_argument(
        "--database-url", default="sqlite:///relay.db", help="the database (default: SQLite)"
    )
    options = parser.parse_args()
    runs = max(options.runs, 5)
    relay = _relay_command()
    with tempfile.TemporaryDirectory(prefix="relay-startup-") as folder:
        here = Path(folder)
        config = here / "relay.toml"
        config.write_text(
            f'[relay]\ndomain = "relay.localhost"\n\n[database]\nurl = "{options.database_url}"\n'
        )
        _timed([*relay, "-c", str(config), "db", "upgrade"], here)
        using = [*relay, "-c", str(config)]
        commands = {
            BASELINE: ([sys.executable, "-c", "import click"], (0,)),
            "relay --help": ([*relay, "--help"], (0,)),
            "relay status": ([*using, "status"], (0, 1)),
            "relay --version": ([*relay, "--version"], (0,)),
            "relay queue": ([*using, "queue"], (0,)),
            "relay held": ([*using, "held"], (0,)),
        }
        for argv, allowed in commands.values():  # warm the file cache, not measured
            _timed(argv, here, allowed)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, (argv, allowed) in commands.items():
                times[name].append(_timed(argv, here, allowed))
    medians = {name: statistics.median(each) for name, each in times.items()}
    baseline = medians[BASELINE]
    backend = options.database_url.split(":", 1)[0]
    print(f"{runs} interleaved runs of each, median wall time; ratio against the baseline")
    print(f"database: {backend}")
    print(f"{'command':<28} {'median ms':>10} {'min ms':>8} {'ratio':>6}")
    for name, median in medians.items():
        ratio = median / baseline
        low = min(times[name]) * 1000
        print(f"{name:<28} {median * 1000:>10.0f} {low:>8.0f} {ratio:>6.2f}")
    for name in TARGETED:
        ratio = medians[name] / baseline
        verdict = "meets" if ratio < TARGET else "misses"
        print(f"{name}: {ratio:.2f}x the baseline, {verdict} the {TARGET:.0f}x target")


if __name__ == "__main__":
    main()
