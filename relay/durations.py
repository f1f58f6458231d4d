"""Durations as people write and read them: "90s", "5m", "1h", "5d".

Owns the one parser (relay.toml settings, ``relay purge --older-than``) and
the one formatter (``relay status``, ``relay queue``, ``relay held``, the
moderators' alert, ``relay check-config``). A leaf: imports only the errors.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from relay.errors import ConfigError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
# Largest first: a duration is shown in the largest unit it reaches.
_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


def parse_duration(raw: Any, where: str) -> timedelta:
    """ "90", 90, "90s", "5m", "1h" or "5d" -> timedelta."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw >= 0:
        return timedelta(seconds=raw)
    match = _DURATION.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise ConfigError(f"{where}: expected a duration such as 30s, 5m, 1h or 5d, got {raw!r}")
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def format_duration(duration: timedelta | float | None, *, exact: bool = False) -> str:
    """A duration (or a number of seconds) in one unit: "3d", "5h", "12m", "40s"; None is "-".

    By default it is an age, rounded down to the largest unit it reaches
    ("1h" for 90 minutes; a negative age from clock skew reads "0s").
    ``exact`` keeps the value: the largest unit that divides it ("90m"),
    so what ``relay check-config`` prints parses back to the same setting.
    """
    if duration is None:
        return "-"
    seconds = int(duration.total_seconds() if isinstance(duration, timedelta) else duration)
    seconds = max(seconds, 0)
    for unit, size in _UNITS:
        if exact and seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
        if not exact and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
