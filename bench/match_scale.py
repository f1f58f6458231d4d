"""Matching at scale: synthetic cohorts of 3,000 x 1,000 and 30,000 x 10,000 (capacity 3).

Each size runs in its own child process so that its peak memory (max RSS, read with
os.wait4) is its own. For every size the child prints the wall time of loading the CSVs,
scoring (candidate generation), solving, auditing (blocking pairs, ranks) and
explaining, then the matched count. At 3,000 x 1,000 it also computes the exact optimum
on the capacity-expanded dense matrix with scipy.optimize.linear_sum_assignment (hard
filters as a large cost) and prints our total score as a fraction of it.

    python3 bench/match_scale.py                 # both sizes, optimal method
    python3 bench/match_scale.py --method stable
    python3 bench/match_scale.py --sizes 3000x1000
    python3 bench/match_scale.py --cohort tight      # issue 18's cohort (see tight_cohort)
    python3 bench/match_scale.py --cohort late       # the same, 2% late joiners in one corner
    python3 bench/match_scale.py --db-pairs 30000    # + what a round over a full database adds
    python3 bench/match_scale.py --cohort tight --sizes 30000x10000 --end-to-end 3 --db-pairs 30000

--end-to-end RUNS times `relay match` as a coordinator runs it (a fresh process: the
relay.toml, both CSVs in, proposals.csv out, on a SQLite database), interleaved with a
process that only loads the two CSVs (the baseline) and, with --db-pairs, with the same
`relay match` over a database that already holds that many pairs of other people (so
the matching work is the same and the difference is what the database adds). It prints
the medians, the ratio to the baseline and the peak RSS of `relay match`.

Every size also prints how many unmatched mentees have a suitable mentor with a free
place (must be 0: coverage.augment makes the match maximum), checked on the whole
feasibility graph, not the candidate lists.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from matching.blocks import ScoreModel
from matching.match import match
from matching.profiles import load_mentees, load_mentors
from matching.score import RESOLUTION, total_weight
from matching.settings import MatchSettings

ROOT = Path(__file__).resolve().parent.parent
FIELDS = [f"field {i}" for i in range(25)]
INTERESTS = [f"interest {i}" for i in range(80)]
GOALS = [f"goal {i}" for i in range(15)]
LANGUAGES = ["English", "Spanish", "French", "German", "Portuguese", "Hindi", "Arabic", "Swahili"]
ZONES = [
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "Europe/Madrid",
    "Europe/Berlin",
    "Africa/Nairobi",
    "Asia/Dubai",
    "+05:30",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC-3",
    "Africa/Lagos",
    "Asia/Kathmandu",
]
HEADER = [
    "email",
    "name",
    "field",
    "interests",
    "goals",
    "languages",
    "time_zone",
    "organisation",
    "gender",
    "prefer_same_gender",
    "capacity",
]


def write_cohort(folder: Path, n_mentees: int, n_mentors: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    zone_weights = [3, 1, 2, 4, 1, 1, 3, 2, 3, 1, 1, 3, 1, 1, 1, 1, 1, 1]
    for kind, count in (("mentors", n_mentors), ("mentees", n_mentees)):
        with (folder / f"{kind}.csv").open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(HEADER if kind == "mentors" else HEADER[:-1])
            for i in range(count):
                langs = ["English"] if rng.random() < 0.8 else []
                langs += rng.sample(LANGUAGES, rng.choice([1, 1, 2]))
                gender = rng.choice(["woman", "man", "woman", "man", "non-binary", ""])
                prefer = "yes" if gender and rng.random() < 0.08 else "no"
                out.writerow(
                    [
                        f"{kind[:-1]}{i}@example.org",
                        f"{kind[:-1].title()} {i}",
                        rng.choice(FIELDS),
                        ";".join(rng.sample(INTERESTS, rng.randint(2, 6))),
                        ";".join(rng.sample(GOALS, rng.randint(1, 3))),
                        ";".join(dict.fromkeys(langs)),
                        rng.choices(ZONES, zone_weights)[0],
                        f"org {rng.randrange(300)}",
                        gender,
                        prefer,
                        *([3] if kind == "mentors" else []),
                    ]
                )


def write_tight_cohort(
    folder: Path, n_mentees: int, n_mentors: int, seed: int = 18, late: int = 0
) -> None:
    """Issue 18's cohort: places for exactly every mentee (capacity 3), six languages,
    five time zones, fifty organisations; the shape that left 178 mentees out.

    With late > 0 the last `late` mentees are late joiners who all speak only Hindi
    and live in Tokyo: that corner overflows, and covering the most mentees takes many
    augmenting paths (moving other mentees out of the corner)."""
    rng = random.Random(seed)
    languages = LANGUAGES[:6]
    zones = ["America/New_York", "UTC", "Europe/Berlin", "Asia/Dubai", "Asia/Tokyo"]
    for kind, count in (("mentors", n_mentors), ("mentees", n_mentees)):
        with (folder / f"{kind}.csv").open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(HEADER if kind == "mentors" else HEADER[:-1])
            for i in range(count):
                out.writerow(
                    [
                        f"{kind[:-1]}{i}@example.org",
                        f"{kind[:-1].title()} {i}",
                        rng.choice(FIELDS),
                        ";".join(rng.sample(INTERESTS, rng.randint(2, 6))),
                        ";".join(rng.sample(GOALS, rng.randint(1, 3))),
                        ";".join(rng.sample(languages, rng.choice([1, 1, 2])))
                        if kind == "mentors" or i < count - late
                        else "Hindi",
                        rng.choice(zones)
                        if kind == "mentors" or i < count - late
                        else "Asia/Tokyo",
                        f"org {rng.randrange(50)}",
                        "",
                        "no",
                        *([3] if kind == "mentors" else []),
                    ]
                )


def write_named_cohort(cohort: str, folder: Path, n_mentees: int, n_mentors: int) -> None:
    if cohort == "varied":
        write_cohort(folder, n_mentees, n_mentors)
    else:
        write_tight_cohort(
            folder, n_mentees, n_mentors, late=n_mentees // 50 if cohort == "late" else 0
        )


def left_out_with_room(mentors: list, mentees: list, result, settings: MatchSettings) -> int:  # type: ignore[no-untyped-def]
    """Unmatched mentees that have a suitable mentor with a free place, on the full graph."""
    model = ScoreModel(mentors, mentees, settings)
    index = {m.email: i for i, m in enumerate(mentors)}
    load = np.bincount([index[p.mentor_email] for p in result.proposals], minlength=len(mentors))
    free = np.flatnonzero(load < np.array([m.capacity for m in mentors]))
    rows = np.array(
        [i for i, e in enumerate(mentees) if e.email in {u.mentee_email for u in result.unmatched}],
        np.intp,
    )
    if not rows.size or not free.size:
        return 0
    return int(model.admissible(rows, free).any(axis=1).sum())


def fill_database(url: str, n_pairs: int) -> None:
    """Create the schema at url and bulk-insert n_pairs active pairs of other people
    (n_pairs // 3 mentors with three mentees each, none of them in the cohort's CSVs)."""
    from sqlalchemy import insert

    from relay.store import db
    from relay.store.models import Pair, Participant, ParticipantAddress

    store = db.Store(url)
    db.upgrade(store)
    if n_pairs:
        n_mentors = max(1, n_pairs // 3)
        with store.session() as session:
            people = [
                {"id": i + 1, "email": f"p{i}@earlier.example.org", "display_name": f"P {i}",
                 "role": "mentor" if i < n_mentors else "mentee", "watched": False}
                for i in range(n_mentors + n_pairs)
            ]  # fmt: skip
            session.execute(insert(Participant), people)
            session.execute(
                insert(ParticipantAddress),
                [{"participant_id": p["id"], "email": p["email"]} for p in people],
            )
            session.execute(
                insert(Pair),
                [
                    {"token": f"t{i:012d}", "mentor_id": 1 + i % n_mentors,
                     "mentee_id": n_mentors + 1 + i, "status": "active", "watched": False}
                    for i in range(n_pairs)
                ],
            )  # fmt: skip
    store.dispose()


def db_round_seconds(n_pairs: int) -> tuple[float, float]:
    """(seconds to read a round's state from a SQLite database holding n_pairs pairs,
    seconds of a plain SELECT count(*) over its pairs), measured in the same process."""
    from sqlalchemy import func, select

    from relay.store import db
    from relay.store.match_round import exclusions, round_state
    from relay.store.models import Pair

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/round.db"
        fill_database(url, n_pairs)
        store = db.Store(url)
        emails = [f"p{i}@earlier.example.org" for i in range(n_pairs // 3 + n_pairs)]
        gc.disable()  # as `relay match` does
        start = time.perf_counter()
        with store.read_session() as session:
            state = round_state(session, "relay.bench")
        exclusions(state, emails)
        for email in emails:  # what `relay match` asks of each profile
            state.open_pair_of_mentee(email)
        round_s = time.perf_counter() - start
        gc.enable()
        start = time.perf_counter()
        with store.read_session() as session:
            session.scalar(select(func.count()).select_from(Pair))
        count_s = time.perf_counter() - start
        store.dispose()
    return round_s, count_s


def timed_process(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, which must succeed."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's relay/ and matching/
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status != 0:
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace"))
            raise SystemExit(f"{' '.join(argv)} failed ({status})")
    return wall, usage.ru_maxrss / 1024


LOAD_ONLY = (
    "import sys; from matching.profiles import load_mentees, load_mentors;"
    " load_mentors(sys.argv[1]); load_mentees(sys.argv[2])"
)


def end_to_end(n_mentees: int, n_mentors: int, cohort: str, runs: int, db_pairs: int) -> None:
    """`relay match` in its own process, interleaved with a process that only loads the
    CSVs and, with db_pairs, with `relay match` over a database holding that many pairs."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_named_cohort(cohort, folder, n_mentees, n_mentors)
        kinds = {
            "load the CSVs only": [sys.executable, "-c", LOAD_ONLY, "mentors.csv", "mentees.csv"]
        }
        for name, pairs in (("empty", 0), ("full", db_pairs)) if db_pairs else (("empty", 0),):
            (folder / f"{name}.toml").write_text(
                f'[relay]\ndomain = "relay.bench"\n[database]\nurl = "sqlite:///{name}.db"\n'
            )
            fill_database(f"sqlite:///{folder}/{name}.db", pairs)
            label = "relay match" + (f", database with {pairs} pairs" if pairs else "")
            kinds[label] = [
                sys.executable, "-m", "relay", "-c", f"{name}.toml", "match",
                "--mentors", "mentors.csv", "--mentees", "mentees.csv",
                "--out", f"{name}-proposals.csv", "--force",
            ]  # fmt: skip
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        rss: dict[str, float] = dict.fromkeys(kinds, 0.0)
        for _ in range(runs):
            for kind, argv in kinds.items():
                wall, peak = timed_process(argv, folder)
                walls[kind].append(wall)
                rss[kind] = max(rss[kind], peak)
        proposals = (folder / "empty-proposals.csv").read_text().count("\n") - 1
    median = {k: sorted(v)[len(v) // 2] for k, v in walls.items()}
    base = median["load the CSVs only"]
    print(
        f"{n_mentees} mentees x {n_mentors} mentors ({cohort} cohort), end to end,"
        f" {runs} interleaved runs, medians; {proposals} rows in proposals.csv"
    )
    for kind in kinds:
        runs_text = ", ".join(f"{w:.2f}" for w in walls[kind])
        print(
            f"  {kind:45s} {median[kind]:6.2f} s  {median[kind] / base:5.1f}x the CSV load"
            f"   peak RSS {rss[kind]:5.0f} MB   (runs: {runs_text})"
        )
    if db_pairs:
        full = walls[f"relay match, database with {db_pairs} pairs"]
        # Paired by run: the load on a shared machine moves both of a run's figures.
        added = sorted(f - e for f, e in zip(full, walls["relay match"], strict=True))
        print(
            f"  a database with {db_pairs} pairs adds {added[len(added) // 2]:+.2f} s"
            f" (median of the runs' differences: {', '.join(f'{a:+.2f}' for a in added)})"
        )
    sys.stdout.flush()


def exact_optimum(mentors: list, mentees: list, settings: MatchSettings) -> tuple[float, int]:
    model = ScoreModel(mentors, mentees, settings)
    points = model.block(np.arange(len(mentees)))
    capacity = np.array([m.capacity for m in mentors])
    columns = np.repeat(np.arange(len(mentors)), capacity)
    dense = points[:, columns].astype(np.float64)
    max_points = RESOLUTION * total_weight(settings)
    big = max_points * (len(mentees) + 1.0)
    cost = np.where(dense >= 0, -dense, big)
    rows, cols = linear_sum_assignment(cost)
    real = dense[rows, cols] >= 0
    return float(dense[rows, cols][real].sum() / max_points), int(real.sum())


def child(n_mentees: int, n_mentors: int, method: str, cohort: str) -> None:
    report: dict[str, float | int | str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_named_cohort(cohort, folder, n_mentees, n_mentors)
        start = time.perf_counter()
        mentors = load_mentors(folder / "mentors.csv")
        mentees = load_mentees(folder / "mentees.csv")
        report["load_s"] = time.perf_counter() - start
    settings = MatchSettings()
    start = time.perf_counter()
    result = match(mentors, mentees, settings, method=method)  # type: ignore[arg-type]
    report["match_s"] = time.perf_counter() - start
    for step, seconds in result.timings.items():
        report[f"{step}_s"] = seconds
    report["matched"] = result.summary.matched
    report["unmatched"] = result.summary.unmatched
    report["mean_score"] = result.summary.mean_score
    report["total_score"] = result.summary.total_score
    report["blocking_pairs"] = result.summary.blocking_pairs
    report["left_out_with_room"] = left_out_with_room(mentors, mentees, result, settings)
    if n_mentees <= 3000:
        start = time.perf_counter()
        optimum, opt_matched = exact_optimum(mentors, mentees, settings)
        report["exact_s"] = time.perf_counter() - start
        report["exact_total"] = optimum
        report["exact_matched"] = opt_matched
        report["fraction_of_optimum"] = result.summary.total_score / optimum
    print(json.dumps(report))


def run_size(n_mentees: int, n_mentors: int, method: str, cohort: str) -> dict[str, float]:
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            f"{n_mentees}x{n_mentors}",
            "--method",
            method,
            "--cohort",
            cohort,
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"child for {n_mentees}x{n_mentors} failed ({status})")
    report: dict[str, float] = json.loads(out)
    report["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3000x1000,30000x10000")
    parser.add_argument("--method", choices=["optimal", "stable"], default="optimal")
    parser.add_argument("--cohort", choices=["varied", "tight", "late"], default="varied")
    parser.add_argument("--db-pairs", type=int, default=0)
    parser.add_argument("--end-to-end", type=int, default=0, metavar="RUNS")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        a, b = args.child.split("x")
        child(int(a), int(b), args.method, args.cohort)
        return
    for size in args.sizes.split(","):
        a, b = (int(x) for x in size.split("x"))
        if args.end_to_end:
            end_to_end(a, b, args.cohort, args.end_to_end, args.db_pairs)
        r = run_size(a, b, args.method, args.cohort)
        print(f"{a} mentees x {b} mentors, capacity 3, method {args.method}")
        print(f"  load CSVs   {r['load_s']:7.2f} s")
        print(f"  scoring     {r['scoring_s']:7.2f} s")
        print(f"  solving     {r['solving_s']:7.2f} s")
        print(f"  audit       {r['audit_s']:7.2f} s   (blocking pairs: {r['blocking_pairs']})")
        print(f"  explaining  {r['explaining_s']:7.2f} s")
        print(f"  match()     {r['match_s']:7.2f} s   end to end after loading")
        print(f"  peak RSS    {r['peak_rss_mb']:7.0f} MB (whole child process)")
        print(
            f"  matched     {r['matched']:7d}   unmatched {r['unmatched']}"
            f"   mean score {r['mean_score']:.4f}"
        )
        print(f"  unmatched with a suitable mentor who has room: {r['left_out_with_room']}")
        print(
            f"  match() / loading the CSVs: {r['match_s'] / r['load_s']:.1f}x"
            f"   (load + match {r['load_s'] + r['match_s']:.2f} s)"
        )
        if "fraction_of_optimum" in r:
            print(
                f"  exact optimum (linear_sum_assignment, {r['exact_s']:.1f} s):"
                f" matched {r['exact_matched']}, total {r['exact_total']:.3f};"
                f" ours {r['total_score']:.3f} = {100 * r['fraction_of_optimum']:.3f}%"
            )
        sys.stdout.flush()
    if args.db_pairs:
        round_s, count_s = db_round_seconds(args.db_pairs)
        print(
            f"database round over {args.db_pairs} pairs: {round_s:.2f} s"
            f" (a plain SELECT count(*) over pairs: {count_s * 1000:.1f} ms)"
        )


if __name__ == "__main__":
    main()
