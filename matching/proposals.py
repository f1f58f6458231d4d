"""The proposals CSV: writing a match for coordinators and reading it back after edits.

This module owns the file's columns. Unmatched mentees are written as rows with an
empty mentor so a coordinator can fill one in by hand; read_proposals skips rows whose
mentor is still empty.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .match import MatchResult, Proposal, Unmatched
from .profiles import Mentee, Mentor

__all__ = ["COLUMNS", "ProposalError", "ProposalRow", "read_proposals", "write_proposals"]

COLUMNS = (
    "mentee_email",
    "mentee_name",
    "mentor_email",
    "mentor_name",
    "score",
    "rank",
    "reasons",
    "mentor_capacity",
)
REQUIRED = ("mentee_email", "mentor_email")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ProposalError(ValueError):
    """A proposals file cannot be used; the message names file, line and column."""

    def __init__(self, file: str, line: int, column: str | None, problem: str) -> None:
        self.file, self.line, self.column, self.problem = file, line, column, problem
        where = f"{file} line {line}" + (f", column '{column}'" if column else "")
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class ProposalRow:
    mentee_email: str
    mentee_name: str
    mentor_email: str
    mentor_name: str
    line: int
    mentor_capacity: int | None = None  # the mentor's places, when the file says


def write_proposals(
    path: str | Path,
    result: MatchResult | Sequence[Proposal],
    unmatched: Iterable[Unmatched] = (),
    capacities: Mapping[str, int] | None = None,
) -> None:
    """Write proposals (best score first within the file order of mentees), then the
    unmatched mentees with an empty mentor and the reason in the reasons column.

    ``capacities`` (mentor email -> places) fills the mentor_capacity column, which
    `relay match apply` checks against the pairs the database already holds."""
    if isinstance(result, MatchResult):
        proposals: Sequence[Proposal] = result.proposals
        unmatched = result.unmatched
    else:
        proposals = result
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for p in proposals:
            writer.writerow(
                [
                    p.mentee_email,
                    p.mentee_name,
                    p.mentor_email,
                    p.mentor_name,
                    f"{p.score:.3f}",
                    p.rank,
                    "; ".join(p.reasons),
                    (capacities or {}).get(p.mentor_email, ""),
                ]
            )
        for u in unmatched:
            reason = f"unmatched: {u.reason}"
            writer.writerow([u.mentee_email, u.mentee_name, "", "", "", "", reason, ""])


def read_proposals(
    path: str | Path,
    mentors: Sequence[Mentor] | None = None,
    mentees: Sequence[Mentee] | None = None,
) -> list[ProposalRow]:
    """Read a (possibly edited) proposals CSV; rows with an empty mentor are skipped.

    With mentors / mentees given, every email must belong to one of them and empty
    names are filled from the profiles.
    """
    path = Path(path)
    file = path.name
    mentor_names = {p.email: p.name for p in mentors} if mentors is not None else None
    mentee_names = {p.email: p.name for p in mentees} if mentees is not None else None
    rows: list[ProposalRow] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise ProposalError(file, 0, None, f"cannot read file ({e.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                raise ProposalError(file, 1, None, "file is empty (expected a header row)")
            names = [h.strip().lower().replace(" ", "_") for h in header]
            for column in REQUIRED:
                if column not in names:
                    raise ProposalError(file, 1, column, "required column is missing")
            start = reader.line_num + 1
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                row = {n: c.strip() for n, c in zip(names, cells, strict=False)}
                mentor = row.get("mentor_email", "").lower()
                mentee = row.get("mentee_email", "").lower()
                if not mentee:
                    raise ProposalError(file, line, "mentee_email", "mentee email is empty")
                if not mentor:
                    continue
                for column, email, known in (
                    ("mentee_email", mentee, mentee_names),
                    ("mentor_email", mentor, mentor_names),
                ):
                    if not EMAIL.match(email):
                        raise ProposalError(file, line, column, f"not an email address '{email}'")
                    if known is not None and email not in known:
                        who = column.split("_")[0]
                        raise ProposalError(file, line, column, f"no {who} with email '{email}'")
                if (mentor, mentee) in seen:
                    raise ProposalError(
                        file,
                        line,
                        "mentor_email",
                        f"the same pair already appears on line {seen[(mentor, mentee)]}",
                    )
                seen[(mentor, mentee)] = line
                mentee_name = row.get("mentee_name", "") or (mentee_names or {}).get(mentee, "")
                mentor_name = row.get("mentor_name", "") or (mentor_names or {}).get(mentor, "")
                capacity = row.get("mentor_capacity", "")
                if capacity and not capacity.isdigit():
                    raise ProposalError(
                        file, line, "mentor_capacity", f"not a whole number '{capacity}'"
                    )
                rows.append(
                    ProposalRow(
                        mentee,
                        mentee_name,
                        mentor,
                        mentor_name,
                        line,
                        int(capacity) if capacity else None,
                    )
                )
        except csv.Error as e:
            raise ProposalError(file, reader.line_num, None, f"not valid CSV ({e})") from None
        except UnicodeDecodeError:
            raise ProposalError(file, reader.line_num + 1, None, "not UTF-8 text") from None
    return rows
