from __future__ import annotations

import pytest

from matching.settings import MatchSettings, SettingsError, Weight


def test_defaults_and_overrides() -> None:
    default = MatchSettings.from_mapping({})
    assert default.weight("field") is Weight.HIGH
    assert default.max_time_zone_hours == 6 and default.separate_organisations
    s = MatchSettings.from_mapping(
        {"weights": {"field": "Mandatory", "goals": "off"}, "max_time_zone_hours": 3}
    )
    assert s.weight("field") is Weight.MANDATORY
    assert s.weight("goals") is Weight.OFF
    assert s.weight("interests") is Weight.MEDIUM
    assert s.max_time_zone_minutes == 180


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"weights": {"field": "very high"}}, "'weights.field' must be one of"),
        ({"weights": {"height": "low"}}, "unknown key 'weights.height'"),
        ({"max_time_zone_hours": "six"}, "'max_time_zone_hours'"),
        ({"separate_organisations": "yes"}, "'separate_organisations'"),
        ({"candidates_per_mentee": 0}, "'candidates_per_mentee'"),
    ],
)
def test_bad_settings_name_the_key(data: dict[str, object], names: str) -> None:
    with pytest.raises(SettingsError) as caught:
        MatchSettings.from_mapping(data, source="relay.toml")
    assert str(caught.value).startswith("relay.toml [matching]: ")
    assert names in str(caught.value)
