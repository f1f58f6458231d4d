"""Match offers at scale: what `relay match offer` adds to a plain `relay match`.

Builds bench/match_scale.py's synthetic cohort (capacity 3), then times, in the same
run, match() alone and make_offers() (match() for the reserved places, plus a second
scoring pass for each mentee's other candidates), and prints the ratio, the number
of offers, and checks that the reserved places fit the capacities.

    python3 bench/offer_scale.py                  # 3,000 mentees x 1,000 mentors
    python3 bench/offer_scale.py --size 30000x10000 --choices 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from match_scale import write_cohort

from matching.match import match
from matching.offers import make_offers
from matching.profiles import load_mentees, load_mentors
from matching.settings import MatchSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3000x1000", help="MENTEESxMENTORS")
    parser.add_argument("--choices", type=int, default=3)
    args = parser.parse_args()
    n_mentees, n_mentors = (int(x) for x in args.size.split("x"))
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
