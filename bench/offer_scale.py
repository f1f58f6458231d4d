"""Match offers at scale: what `relay match offer` adds to a plain `relay match`.

Builds bench/match_scale.py's synthetic cohort (capacity 3), then times, in the same
run, match() alone and make_offers() (match() for the reserved places, plus a second
scoring pass for each mentee's other candidates), and prints the ratio, the number
of offers, and checks that the reserved places fit the capacities.

--end-to-end RUNS times `relay match offer` as a coordinator runs it (its own process,
a relay.toml, both CSVs in, every offer and letter stored in a fresh SQLite database),
interleaved with a process that only loads the two CSVs (the baseline), and prints the
medians, the ratio to the baseline and the peak RSS (os.wait4). --before FOLDER adds
the same command run from another copy of the code (relay/ and matching/, with
templates/ and migrations/ inside relay/, as a package has them), e.g. main's:

    mkdir /tmp/offers-before && git archive main relay matching templates migrations \
        | tar -x -C /tmp/offers-before && cd /tmp/offers-before \
        && mv templates relay/templates && mv migrations relay/migrations

Each run's database is made by the code under test (`relay db upgrade`, not timed).

    python3 bench/offer_scale.py                  # 3,000 mentees x 1,000 mentors
    python3 bench/offer_scale.py --size 30000x10000 --choices 3
    python3 bench/offer_scale.py --size 30000x10000 --end-to-end 3 --before /tmp/offers-before
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from match_scale import LOAD_ONLY, write_cohort

from matching.match import match
from matching.offers import make_offers
from matching.profiles import load_mentees, load_mentors
from matching.settings import MatchSettings

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str], code: Path, cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one child process run from `code`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env["PYTHONPATH"] = str(code)
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        # `python -m relay` puts its working directory first on sys.path: run it in `code`.
        proc = subprocess.Popen(argv, cwd=code, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        said = out.read().decode(errors="replace")
    if status != 0:
        raise SystemExit(f"{' '.join(argv)} failed in {cwd} ({status}):\n{said}")
    return wall, usage.ru_maxrss / 1024, said


def end_to_end(n_mentees: int, n_mentors: int, runs: int, before: Path | None) -> None:
    """`relay match offer` in its own process on a fresh database, interleaved with a
    process that only loads the CSVs (and, with `before`, the same command from there)."""
    codes = {"this checkout": ROOT, **({f"before ({before})": before} if before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_cohort(folder, n_mentees, n_mentors)
        mentors, mentees = str(folder / "mentors.csv"), str(folder / "mentees.csv")
        walls: dict[str, list[float]] = {"load the CSVs only": []}
        rss: dict[str, float] = {"load the CSVs only": 0.0}
        sent: dict[str, str] = {}
        for run in range(runs):
            wall, peak, _ = timed([sys.executable, "-c", LOAD_ONLY, mentors, mentees], ROOT, folder)
            walls["load the CSVs only"].append(wall)
            rss["load the CSVs only"] = max(rss["load the CSVs only"], peak)
            for name, code in codes.items():
                toml = folder / f"{run}-{len(sent)}.toml"
                toml.write_text(
                    f'[relay]\ndomain = "relay.bench"\n[database]\n'
                    f'url = "sqlite:///{folder}/{toml.stem}.db"\n'
                )
                relay = [sys.executable, "-m", "relay", "-c", str(toml)]
                timed([*relay, "db", "upgrade"], code, folder)
                wall, peak, said = timed(
                    [*relay, "match", "offer", "--mentors", mentors, "--mentees", mentees],
                    code,
                    folder,
                )
                label = f"relay match offer, {name}"
                walls.setdefault(label, []).append(wall)
                rss[label] = max(rss.get(label, 0.0), peak)
                sent[label] = said.strip().splitlines()[-1]
                (folder / f"{toml.stem}.db").unlink()
    median = {k: sorted(v)[len(v) // 2] for k, v in walls.items()}
    base = median["load the CSVs only"]
    print(
        f"{n_mentees} mentees x {n_mentors} mentors, end to end, {runs} interleaved runs, medians"
    )
    for kind in walls:
        runs_text = ", ".join(f"{w:.2f}" for w in walls[kind])
        print(
            f"  {kind:60s} {median[kind]:7.2f} s {median[kind] / base:6.1f}x the CSV load"
            f"   peak RSS {rss[kind]:5.0f} MB   (runs: {runs_text})"
        )
    for label, last in sent.items():
        print(f"  {label}: {last!r}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3000x1000", help="MENTEESxMENTORS")
    parser.add_argument("--choices", type=int, default=3)
    parser.add_argument("--end-to-end", type=int, default=0, metavar="RUNS")
    parser.add_argument("--before", type=Path, default=None, metavar="FOLDER")
    args = parser.parse_args()
    n_mentees, n_mentors = (int(x) for x in args.size.split("x"))
    if args.end_to_end:
        end_to_end(n_mentees, n_mentors, args.end_to_end, args.before)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_cohort(folder, n_mentees, n_mentors)
        mentors = load_mentors(folder / "mentors.csv")
        mentees = load_mentees(folder / "mentees.csv")
    settings = MatchSettings()
    start = time.perf_counter()
    plain = match(mentors, mentees, settings)
    match_s = time.perf_counter() - start
    start = time.perf_counter()
    offers = make_offers(mentors, mentees, settings, choices=args.choices)
    offers_s = time.perf_counter() - start
    reserved = Counter(
        c.mentor.email for offer in offers.offers for c in offer.candidates if c.reserved
    )
    capacity = {m.email: m.capacity for m in mentors}
    fits = all(reserved[email] <= capacity[email] for email in reserved)
    sizes = Counter(len(offer.candidates) for offer in offers.offers)
    print(f"cohort {n_mentees} mentees x {n_mentors} mentors, --choices {args.choices}")
    print(f"match():       {match_s:6.2f} s, {plain.summary.matched} matched")
    ratio = offers_s / match_s
    print(f"make_offers(): {offers_s:6.2f} s, {len(offers.offers)} offers ({ratio:.2f}x)")
    print(f"candidates per offer: {dict(sorted(sizes.items()))}; reserved places fit: {fits}")


if __name__ == "__main__":
    main()
