"""When each item of a pair's curriculum is due, for each participant.

Owns the calendar arithmetic: week N of a pair starts on its own start date
plus N-1 weeks; its items go out at ``[programme] send_hour`` in each
participant's own time zone (theirs, else ``[programme] time_zone``). The
end of the pair's weeks (the Monday after the last week, at the same hour in
the programme's time zone) is the "completed" item. Pure: no database.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from relay.programme.curriculum import Curriculum
from relay.store.states import ItemKind


@dataclass(frozen=True)
class PlannedSend:
    due_at: datetime
    key: str
    week: int
    kind: ItemKind
    role: str  # "mentor", "mentee", or "both" (the completion)
    template: str  # "" for the completion


def completion_key(weeks: int) -> str:
    return f"completed-w{weeks:02d}"


@functools.cache
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")  # checked where it is set; an old bad value must not stop a tick


# A programme's pairs share a few start dates: the focus list asks once per pair.
@functools.lru_cache(maxsize=4096)
def week_starts_at(started_on: date, week: int, time_zone: str, hour: int) -> datetime:
    day = started_on + timedelta(weeks=week - 1)
    local = datetime.combine(day, time(hour), tzinfo=zone(time_zone))
    return local.astimezone(UTC)


def current_week(started_on: date, today: date) -> int:
    return (today - started_on).days // 7 + 1


class Planner:
    """Plans, cached: a cohort's pairs mostly share a start date and a few time zones."""

    def __init__(self, send_hour: int, programme_zone: str) -> None:
        self.send_hour = send_hour
        self.programme_zone = programme_zone
        self._cache: dict[tuple[object, ...], tuple[PlannedSend, ...]] = {}

    def plan(
        self,
        curriculum: Curriculum,
        started_on: date,
        weeks: int,
        mentor_zone: str | None,
        mentee_zone: str | None,
    ) -> tuple[PlannedSend, ...]:
        zones = {
            "mentor": mentor_zone or self.programme_zone,
            "mentee": mentee_zone or self.programme_zone,
        }
        cache_key = (curriculum, started_on, weeks, zones["mentor"], zones["mentee"])
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        sends = [
            PlannedSend(
                week_starts_at(started_on, item.week, zones[role], self.send_hour),
                item.key,
                item.week,
                item.kind,
                role,
                item.template,
            )
            for item in curriculum.items
            if item.week <= weeks
            for role in ("mentor", "mentee")
            if item.for_role(role)
        ]
        end = week_starts_at(started_on, weeks + 1, self.programme_zone, self.send_hour)
        sends.append(PlannedSend(end, completion_key(weeks), weeks, ItemKind.COMPLETED, "both", ""))
        planned = tuple(sorted(sends, key=lambda send: (send.due_at, send.key, send.role)))
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[cache_key] = planned
        return planned

    def first_due(self, planned: tuple[PlannedSend, ...], after: datetime) -> datetime | None:
        return next((send.due_at for send in planned if send.due_at >= after), None)
