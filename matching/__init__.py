"""Mentor-mentee matching for mentor-relay; independent of relay/ (never imports it).

`relay match` is the front door. Import from the modules themselves: importing
the package costs nothing, so the relay's settings can read [matching] without
loading numpy, scipy or OR-Tools. The pieces, in the order they run:

- profiles.py   mentors.csv / mentees.csv -> Mentor / Mentee dataclasses
- settings.py   the [matching] table of relay.toml -> MatchSettings
- score.py      one function per criterion, the combined score, reasons in words
- blocks.py     the same scores for a block of mentees at once, with the hard filters
- candidates.py each mentee's best mentors and each mentor's best mentees
- solve.py      optimal (min-cost flow) and stable (deferred acceptance); blocking pairs
- match.py      match(): the steps in order, and the result types
- proposals.py  the proposals CSV, out and back in
"""
