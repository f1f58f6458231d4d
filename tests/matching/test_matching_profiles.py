from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from matching.profiles import ProfileError, UnknownColumnWarning, load_mentees, load_mentors

Writer = Callable[[str, str], Path]

HEADER = (
    "email,name,field,interests,goals,languages,time_zone,organisation,gender,prefer_same_gender"
)


def test_reads_lists_offsets_and_defaults(write: Writer) -> None:
    path = write(
        "mentors.csv",
        HEADER + ",capacity\n"
        "Ana@Example.org,Ana,Civil Engineering,bridges; concrete,career change,"
        "Spanish;English,+05:30,Acme,woman,yes,2\n"
        "bo@example.org,Bo,Software,,,English,UTC-3,,,,\n"
        "cy@example.org,Cy,Software,,,English,Europe/Madrid,,,no,\n",
    )
    ana, bo, cy = load_mentors(path)
    assert ana.email == "ana@example.org"
    assert ana.interests == ("bridges", "concrete")
    assert ana.languages == ("Spanish", "English")
    assert ana.utc_offset_minutes == 330
    assert ana.prefer_same_gender and ana.gender == "woman"
    assert ana.capacity == 2
    assert bo.utc_offset_minutes == -180 and bo.capacity == 1 and bo.interests == ()
    # Standard (winter) offset, so the answer does not change with the season.
    assert cy.utc_offset_minutes == 60


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "x@example.org,X,,,,English,Mars/Base,,,",
            "mentees.csv line 3, column 'time_zone': unknown time zone 'Mars/Base'",
        ),
        (
            "not-an-email,X,,,,English,UTC,,,",
            "mentees.csv line 3, column 'email': not an email address 'not-an-email'",
        ),
        (
            "x@example.org,X,,,,,UTC,,,",
            "mentees.csv line 3, column 'languages': at least one language is needed",
        ),
        (
            "x@example.org,X,,,,English,UTC,,,maybe",
            "mentees.csv line 3, column 'prefer_same_gender': expected yes or no, not 'maybe'",
        ),
        (
            "x@example.org,X,,,,English,UTC,,,yes",
            "mentees.csv line 3, column 'gender': prefer_same_gender is yes but gender is empty",
        ),
        (
            "ok@example.org,Again,,,,English,UTC,,,",
            "mentees.csv line 3, column 'email': 'ok@example.org' already appears on line 2",
        ),
    ],
)
def test_bad_row_names_file_line_and_column(write: Writer, row: str, message: str) -> None:
    path = write("mentees.csv", f"{HEADER}\nok@example.org,Ok,,,,English,UTC,,,\n{row}")
    with pytest.raises(ProfileError) as caught:
        load_mentees(path)
    assert str(caught.value) == message


def test_bad_capacity_and_missing_column(write: Writer) -> None:
    path = write("mentors.csv", HEADER + ",capacity\na@example.org,A,,,,English,UTC,,,,three")
    with pytest.raises(ProfileError, match=r"mentors.csv line 2, column 'capacity'"):
        load_mentors(path)
    path = write("mentees.csv", "email,name,languages\na@example.org,A,English")
    with pytest.raises(ProfileError, match=r"mentees.csv line 1, column 'time_zone': required"):
        load_mentees(path)


def test_line_numbers_count_quoted_newlines(write: Writer) -> None:
    path = write(
        "mentees.csv",
        f'{HEADER}\na@example.org,"A\nsecond line",,,,English,UTC,,,\n'
        "b@example.org,B,,,,English,Nowhere,,,",
    )
    with pytest.raises(ProfileError, match=r"mentees.csv line 4, column 'time_zone'"):
        load_mentees(path)


def test_unknown_column_warns_and_is_ignored(write: Writer) -> None:
    path = write(
        "mentees.csv", "email,name,languages,Time Zone,shoe size\na@example.org,A,English,UTC,42"
    )
    with pytest.warns(UnknownColumnWarning, match="'shoe size'"):
        (mentee,) = load_mentees(path)
    assert mentee.utc_offset_minutes == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clean = "email,name,languages,time_zone\na@example.org,A,English,UTC"
        load_mentees(write("clean.csv", clean))
