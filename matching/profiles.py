"""Mentor and mentee profiles: reading mentors.csv / mentees.csv into plain dataclasses.

This module owns the CSV format of the two profile files, the normalising of
their values (emails, lists, time zones, yes/no) and the errors a coordinator
sees when a row is wrong. It knows nothing about scoring or solving.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "COLUMNS",
    "Mentee",
    "Mentor",
    "Profile",
    "ProfileError",
    "UnknownColumnWarning",
    "load_mentees",
    "load_mentors",
    "normalise_tag",
    "parse_time_zone",
]


class ProfileError(ValueError):
    """A profile file cannot be used; the message names file, line and column."""

    def __init__(self, file: str, line: int, column: str | None, problem: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.problem = problem
        where = f"{file} line {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")


class UnknownColumnWarning(UserWarning):
    """A profile file has a column that matching does not use (it is ignored)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """What mentors and mentees have in common. Lists keep the file's spelling."""

    email: str
    name: str
    field: str
    interests: tuple[str, ...]
    goals: tuple[str, ...]
    languages: tuple[str, ...]
    time_zone: str
    utc_offset_minutes: int
    organisation: str
    gender: str
    prefer_same_gender: bool
    line: int


@dataclass(frozen=True, slots=True)
class Mentor(Profile):
    capacity: int = 1


@dataclass(frozen=True, slots=True)
class Mentee(Profile):
    pass


COMMON_COLUMNS = (
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
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "mentor": (*COMMON_COLUMNS, "capacity"),
    "mentee": COMMON_COLUMNS,
}
REQUIRED = ("email", "name", "languages", "time_zone")

# Spreadsheet headers drift ("Time zone", "Organization"); accept the obvious variants.
ALIASES = {
    "timezone": "time_zone",
    "tz": "time_zone",
    "organization": "organisation",
    "org": "organisation",
    "language": "languages",
    "interest": "interests",
    "goal": "goals",
    "same_gender": "prefer_same_gender",
    "prefers_same_gender": "prefer_same_gender",
    "e_mail": "email",
}

YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0", ""}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
OFFSET = re.compile(r"^(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$")
# Offsets of IANA zones are taken as their standard (non-DST) offset on this date, so a
# cohort matched in July and in January gets the same answer.
REFERENCE_DAY = dt.datetime(2025, 1, 15, 12, 0)

P = TypeVar("P", Mentor, Mentee)


@functools.lru_cache(maxsize=1 << 16)
def normalise_tag(text: str) -> str:
    """The comparison form of a field, interest, goal, language or organisation."""
    # Cached: a cohort repeats a few hundred tags millions of times (features, reasons).
    return " ".join(text.casefold().split())


@functools.lru_cache(maxsize=4096)  # a cohort has a few zones, written the same way
def parse_time_zone(text: str) -> int:
    """Minutes east of UTC for an IANA name ("Europe/Madrid") or an offset ("+05:30")."""
    value = text.strip()
    lowered = value.lower()
    if lowered in {"utc", "gmt", "z"}:
        return 0
    m = OFFSET.match(lowered)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60 or hours * 60 + minutes > 14 * 60:
            raise ValueError(f"offset out of range '{value}'")
        return sign * (hours * 60 + minutes)
    try:
        zone = ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{value}'") from None
    local = REFERENCE_DAY.replace(tzinfo=zone)
    offset = local.utcoffset()
    dst = local.dst()
    assert offset is not None
    standard = offset - (dst or dt.timedelta(0))
    return int(standard.total_seconds() // 60)


@functools.lru_cache(maxsize=1 << 16)
def _split(text: str) -> tuple[str, ...]:
    seen: set[str] = set()
    items: list[str] = []
    for part in text.split(";"):
        item = " ".join(part.split())
        key = normalise_tag(item)
        if item and key not in seen:
            seen.add(key)
            items.append(item)
    return tuple(items)


def _header(raw: Sequence[str], file: str, kind: str) -> list[str | None]:
    known = COLUMNS[kind]
    names: list[str | None] = []
    unknown: list[str] = []
    for cell in raw:
        key = re.sub(r"[\s\-]+", "_", cell.strip().lower())
        key = ALIASES.get(key, key)
        if key in known:
            if key in names:
                raise ProfileError(file, 1, cell.strip(), "column appears twice")
            names.append(key)
        else:
            names.append(None)
            if cell.strip():
                unknown.append(cell.strip())
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ProfileError(file, 1, missing[0], "required column is missing")
    if unknown:
        warnings.warn(
            f"{file}: ignoring unknown column(s) {', '.join(repr(u) for u in unknown)}",
            UnknownColumnWarning,
            stacklevel=5,
        )
    return names


def _rows(path: Path, kind: str) -> Iterator[tuple[int, dict[str, str]]]:
    file = path.name
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as e:
        raise ProfileError(file, 0, None, f"cannot read file ({e.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            raw = next(reader, None)
            if raw is None:
                raise ProfileError(file, 1, None, "file is empty (expected a header row)")
            names = _header(raw, file, kind)
            start = reader.line_num + 1
            for cells in reader:
                line, start = start, reader.line_num + 1
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) > len(names) and any(c.strip() for c in cells[len(names) :]):
                    raise ProfileError(file, line, None, "more cells than header columns")
                row = {n: c.strip() for n, c in zip(names, cells, strict=False) if n}
                yield line, row
        except csv.Error as e:
            raise ProfileError(file, reader.line_num, None, f"not valid CSV ({e})") from None
        except UnicodeDecodeError:
            raise ProfileError(file, reader.line_num + 1, None, "not UTF-8 text") from None


def _profile_fields(file: str, line: int, row: dict[str, str]) -> dict[str, object]:
    def err(column: str, problem: str) -> ProfileError:
        return ProfileError(file, line, column, problem)

    email = row.get("email", "").lower()
    if not email:
        raise err("email", "email is empty")
    if not EMAIL.match(email):
        raise err("email", f"not an email address '{row['email']}'")
    name = row.get("name", "")
    if not name:
        raise err("name", "name is empty")
    languages = _split(row.get("languages", ""))
    if not languages:
        raise err("languages", "at least one language is needed")
    tz_text = row.get("time_zone", "")
    if not tz_text:
        raise err("time_zone", "time zone is empty")
    try:
        offset = parse_time_zone(tz_text)
    except ValueError as e:
        raise err("time_zone", str(e)) from None
    prefer_text = row.get("prefer_same_gender", "").lower()
    if prefer_text not in YES | NO:
        raise err("prefer_same_gender", f"expected yes or no, not '{row['prefer_same_gender']}'")
    prefer = prefer_text in YES
    gender = row.get("gender", "")
    if prefer and not gender:
        raise err("gender", "prefer_same_gender is yes but gender is empty")
    return {
        "email": email,
        "name": name,
        "field": " ".join(row.get("field", "").split()),
        "interests": _split(row.get("interests", "")),
        "goals": _split(row.get("goals", "")),
        "languages": languages,
        "time_zone": tz_text,
        "utc_offset_minutes": offset,
        "organisation": " ".join(row.get("organisation", "").split()),
        "gender": normalise_tag(gender),
        "prefer_same_gender": prefer,
        "line": line,
    }


def _load(path: str | Path, kind: str, cls: type[P]) -> list[P]:
    path = Path(path)
    people: list[P] = []
    first_line: dict[str, int] = {}
    for line, row in _rows(path, kind):
        fields = _profile_fields(path.name, line, row)
        email = str(fields["email"])
        if email in first_line:
            raise ProfileError(
                path.name, line, "email", f"'{email}' already appears on line {first_line[email]}"
            )
        first_line[email] = line
        if cls is Mentor:
            text = row.get("capacity", "") or "1"
            try:
                capacity = int(text)
            except ValueError:
                capacity = -1
            if capacity < 0:
                raise ProfileError(
                    path.name, line, "capacity", f"expected a whole number >= 0, not '{text}'"
                )
            fields["capacity"] = capacity
        people.append(cls(**fields))  # type: ignore[arg-type]
    return people


def load_mentors(path: str | Path) -> list[Mentor]:
    """Read mentors.csv. Raises ProfileError; warns UnknownColumnWarning for extra columns."""
    return _load(path, "mentor", Mentor)


def load_mentees(path: str | Path) -> list[Mentee]:
    """Read mentees.csv. Raises ProfileError; warns UnknownColumnWarning for extra columns."""
    return _load(path, "mentee", Mentee)
