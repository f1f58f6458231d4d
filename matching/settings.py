"""The `[matching]` section of relay.toml, validated into a frozen MatchSettings.

This module owns the names, defaults and meaning of every matching setting and
the SettingsError a coordinator sees for an unknown key or a bad value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

__all__ = ["CRITERIA", "DEFAULT_WEIGHTS", "MatchSettings", "SettingsError", "Weight"]


class SettingsError(ValueError):
    """A `[matching]` key is unknown or its value is unusable; the message names the key."""


class Weight(Enum):
    MANDATORY = "mandatory"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    OFF = "off"

    @property
    def points(self) -> int:
        """Multiplier in the weighted sum; a mandatory criterion also counts as high."""
        return {"mandatory": 3, "high": 3, "medium": 2, "low": 1, "off": 0}[self.value]


CRITERIA = ("field", "interests", "goals", "language", "time_zone")
DEFAULT_WEIGHTS: Mapping[str, Weight] = MappingProxyType(
    {
        "field": Weight.HIGH,
        "interests": Weight.MEDIUM,
        "goals": Weight.MEDIUM,
        "language": Weight.LOW,
        "time_zone": Weight.LOW,
    }
)


@dataclass(frozen=True)
class MatchSettings:
    weights: Mapping[str, Weight] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    max_time_zone_hours: float = 6.0
    separate_organisations: bool = True
    candidates_per_mentee: int = 20
    candidates_per_mentor: int = 10

    def weight(self, criterion: str) -> Weight:
        return self.weights.get(criterion, Weight.OFF)

    @property
    def max_time_zone_minutes(self) -> int:
        return round(self.max_time_zone_hours * 60)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], source: str = "relay.toml") -> MatchSettings:
        """Validate the parsed `[matching]` table; every problem names the key."""
        where = f"{source} [matching]"
        known = {"weights", *(f for f in cls.__dataclass_fields__ if f != "weights")}
        for key in data:
            if key not in known:
                raise SettingsError(
                    f"{where}: unknown key '{key}' (known: {', '.join(sorted(known))})"
                )
        weights = dict(DEFAULT_WEIGHTS)
        raw_weights = data.get("weights", {})
        if not isinstance(raw_weights, Mapping):
            raise SettingsError(f"{where}: 'weights' must be a table such as [matching.weights]")
        for criterion, value in raw_weights.items():
            key = f"weights.{criterion}"
            if criterion not in CRITERIA:
                raise SettingsError(
                    f"{where}: unknown key '{key}' (criteria: {', '.join(CRITERIA)})"
                )
            try:
                weights[criterion] = Weight(str(value).strip().lower())
            except ValueError:
                choices = ", ".join(w.value for w in Weight)
                raise SettingsError(
                    f"{where}: '{key}' must be one of {choices}, not {value!r}"
                ) from None
        hours = data.get("max_time_zone_hours", cls.max_time_zone_hours)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 <= hours <= 24:
            raise SettingsError(
                f"{where}: 'max_time_zone_hours' must be a number of hours from 0 to 24,"
                f" not {hours!r}"
            )
        separate = data.get("separate_organisations", cls.separate_organisations)
        if not isinstance(separate, bool):
            raise SettingsError(
                f"{where}: 'separate_organisations' must be true or false, not {separate!r}"
            )
        counts: dict[str, int] = {}
        for key in ("candidates_per_mentee", "candidates_per_mentor"):
            value = data.get(key, getattr(cls, key))
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise SettingsError(
                    f"{where}: '{key}' must be a whole number from 1 to 1000, not {value!r}"
                )
            counts[key] = value
        return cls(
            weights=MappingProxyType(weights),
            max_time_zone_hours=float(hours),
            separate_organisations=separate,
            **counts,
        )
