"""The report's period and its moment: --since, --until and --cohort, checked.

Owns what the options mean: --since DATE starts the period at that day's
00:00 UTC, --until DATE ends it at the end of that day (the next 00:00 UTC,
exclusive) and is also the moment the report is "as of" (days since, active
pairs, waiting holds); without --until the report is as of now. Pure: no
database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from relay.errors import InvalidInputError

# A pair is active when either side wrote within this time before the report's moment.
ACTIVE_WITHIN = timedelta(days=14)


@dataclass(frozen=True)
class Period:
    since: datetime | None  # None: from the beginning
    until: datetime  # exclusive; the report's "now"
    cohort: str | None = None

    @property
    def as_of(self) -> datetime:
        return self.until

    @property
    def start(self) -> datetime:
        """The lower bound for comparisons (the beginning of time when there is none)."""
        return self.since or datetime(1970, 1, 1, tzinfo=UTC)

    def to_json(self) -> dict[str, str | None]:
        return {
            "since": self.since.date().isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "cohort": self.cohort,
        }


def _day(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{option}: not a date (YYYY-MM-DD): {text!r}") from None


def period_from(since: str | None, until: str | None, cohort: str | None, now: datetime) -> Period:
    start = datetime.combine(_day("--since", since), time(), UTC) if since else None
    if until:
        end = datetime.combine(_day("--until", until) + timedelta(days=1), time(), UTC)
    else:
        end = now
    if start is not None and until and end <= start:
        raise InvalidInputError(f"--until {until} is before --since {since}")
    if start is not None and not until and start > now:
        raise InvalidInputError(f"--since {since} is in the future (give --until too)")
    return Period(start, end, cohort)
