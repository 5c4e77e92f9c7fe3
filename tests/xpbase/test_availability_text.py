"""The Google Forms availability parser (xpbase/availability_text.py) on 50 realistic answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from xpbase.availability_text import Unreadable, parse_csv, parse_text

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "availability_form.csv"

#: line -> the reading ("weekday HH:MM-HH:MM, ... @zone"), or "X <reason>" for a row listed as unreadable.
EXPECTED = {
    2: "1 18:00-24:00, 2 18:00-24:00, 3 18:00-24:00, 4 18:00-24:00, 5 18:00-24:00 @America/New_York",
    3: "2 19:00-21:00, 4 19:00-21:00 @Asia/Kolkata",  # Tue/Thu 7-9pm
    4: "6 10:00-13:00 @Europe/Berlin",  # Sat 10am-1pm Europe/Berlin
    5: "2 19:00-21:00, 4 19:00-21:00 @America/Los_Angeles",  # Tue/Thu 7-9pm PT
    6: "1 12:00-13:00, 3 12:00-13:00, 5 12:00-13:00 @Asia/Singapore",  # Mon, Wed, Fri 12:00-13:00
    7: "X too vague: 'evenings'",  # Evenings mostly
    8: "7 09:00-12:00 @Africa/Cairo",  # Sundays 9am-12pm
    9: "X IST could be India, Israel or Ireland time",  # Weekends 10am-2pm IST
    10: "1 07:30-08:30, 2 07:30-08:30, 3 07:30-08:30, 4 07:30-08:30, 5 07:30-08:30 @America/Chicago",
    11: "X too vague: 'flexible'",  # flexible
    12: "1 20:00-22:00, 2 20:00-22:00, 3 20:00-22:00, 4 20:00-22:00, 5 20:00-22:00 @Asia/Tokyo",
    13: "1 17:30-24:00, 3 17:30-24:00 @America/Denver",  # Mon and Wed after 5:30pm
    14: "X 9-5: say am or pm",  # Tuesday 9-5
    15: "1 18:00-19:30, 2 18:00-19:30, 3 18:00-19:30, 4 18:00-19:30 @Europe/Berlin",
    16: "4 12:00-13:00 @America/New_York",  # Thursdays 12-1pm ET
    17: "6 16:00-19:00, 7 16:00-19:00 @Asia/Dubai",  # Sat/Sun 4pm-7pm
    18: "X two different time zones",  # Wednesday 9am-11am CET
    19: "X too vague: 'mornings'",  # Mornings before work
    20: "5 15:00-18:00 @Africa/Lagos",  # Fri 3-6pm
    21: "X IST could be India, Israel or Ireland time",  # Tue 7-9pm IST
    22: ", ".join(f"{d} 20:00-21:00" for d in range(1, 8)) + " @Asia/Singapore",
    23: "1 18:00-20:00, 3 19:00-21:00 @America/New_York",  # Mon 6-8pm, Wed 7-9pm
    24: "1 18:00-24:00, 2 18:00-24:00, 3 18:00-24:00, 4 18:00-24:00, 5 18:00-24:00 @America/Chicago",
    25: "2 17:00-18:30, 3 17:00-18:30, 4 17:00-18:30 @Europe/Prague",  # Tue-Thu 17:00-18:30
    26: "X two different time zones",  # Sat 10am-1pm Europe/Berlin
    27: "6 10:00-13:00, 7 10:00-13:00 @Asia/Kolkata",  # Weekends 10am-1pm
    28: "X two different time zones",  # Tue/Thu 7-9pm PT
    29: "1 07:00-08:00, 2 07:00-08:00, 3 07:00-08:00, 4 07:00-08:00, 5 07:00-08:00 @Australia/Sydney",
    30: "3 21:00-23:00 @Asia/Seoul",  # Wed 21:00-23:00
    31: "X too vague: 'whenever'",  # Whenever works
    32: "5 22:00-24:00, 6 00:00-01:00 @America/New_York",  # Fri 10pm-1am
    33: "1 14:00-16:00, 4 10:00-12:00 @Africa/Casablanca",  # Monday 14:00-16:00; Thursday 10:00-12:00
    34: "2 18:00-19:30 @America/Phoenix",  # Tue 6-7:30pm
    35: "X not a time of day: '25:00'",  # Monday 25:00-26:00
    36: "X too vague: 'tbd'",  # TBD
    37: "6 09:00-12:00 @Asia/Tokyo",  # Sat 9am-12pm JST
    38: "3 12:00-14:00 @Europe/London",  # Wed noon-2pm BST
    39: "X not understood: 'lunes'",  # Lunes 6-8pm
    40: "1 18:30-20:00, 3 18:30-20:00, 5 18:30-20:00 @America/Denver",  # Mon/Wed/Fri 6:30-8pm MT
    41: "X no time zone",  # Thu 5-7pm
    42: "1 19:00-21:00, 2 19:00-21:00, 3 19:00-21:00, 4 19:00-21:00, 7 19:00-21:00 @Asia/Jerusalem",
    43: "X too vague: 'evenings'",  # Weekday evenings
    44: "2 18:00-20:00, 4 18:00-20:00 @Europe/Lisbon",  # Tue & Thu 6pm-8pm
    45: "X two different time zones",  # Sat 10am-1pm Europe/Berlin
    46: ", ".join(f"{d} 21:00-22:00" for d in range(1, 8)) + " @Asia/Karachi",
    47: "1 18:00-20:00, 6 10:00-12:00 @America/New_York",  # Mon 6-8pm EST; Sat 10am-12pm
    48: "1 07:00-08:00, 2 07:00-08:00, 3 07:00-08:00, 4 07:00-08:00, 5 07:00-08:00 @Pacific/Auckland",
    49: "X no name",  # Mon 6-8pm
    50: "2 11:00-13:00, 3 11:00-13:00, 4 11:00-13:00 @America/Chicago",  # Tues through Thurs 11am-1pm Central
    51: "5 18:00-20:00, 6 11:00-24:00 @Asia/Beirut",  # Fri 6pm-8pm; Sat after 11am
}


def test_every_row_of_the_fixture_reads_as_expected() -> None:
    """Each of the 50 answers gives exactly the intervals it says, or is listed as unreadable, with why."""
    result = parse_csv(FIXTURE.read_text(encoding="utf-8"))
    assert len(result.rows) == 50
    got = {r.line: r.parsed.describe() if r.parsed else f"X {r.reason}" for r in result.rows}
    assert got == EXPECTED
    assert len(result.readable) + len(result.unreadable) == 50
    assert all(r.reason for r in result.unreadable)


def test_the_issue_examples() -> None:
    """The three answers the issue names."""
    assert parse_text("Weekdays after 6pm EST").describe() == (
        "1 18:00-24:00, 2 18:00-24:00, 3 18:00-24:00, 4 18:00-24:00, 5 18:00-24:00 @America/New_York"
    )
    assert parse_text("Tue/Thu 7-9pm PT").describe() == "2 19:00-21:00, 4 19:00-21:00 @America/Los_Angeles"
    assert parse_text("Sat 10am-1pm Europe/Berlin").describe() == "6 10:00-13:00 @Europe/Berlin"


@pytest.mark.parametrize(
    "text",
    [
        "9-5 EST",
        "evenings PT",
        "Mon 7-9pm IST",
        "Mon 6-8pm",
        "Mon 6-8pm EST PT",
        "Mon 12:00-12:00 UTC",
        "6-8pm UTC",
        "Mon UTC",
        "Mon 6-8pm EST and sometimes later",
    ],
)
def test_never_guesses(text: str) -> None:
    """Ambiguous hours, vague words, unclear, missing or clashing zones, zero length, no days: refused."""
    with pytest.raises(Unreadable):
        parse_text(text)


def test_import_rows_carry_the_readable_rows_only() -> None:
    """import_rows is what admin_import_review_availability takes: the readable rows and their intervals."""
    result = parse_csv(FIXTURE.read_text(encoding="utf-8"))
    rows = result.import_rows()
    assert len(rows) == len(result.readable)
    assert rows[0] == {
        "name": "Dana Whitfield",
        "email": "dana.whitfield@example.com",
        "time_zone": "America/New_York",
        "weekly": [{"weekday": d, "start_minute": 1080, "end_minute": 1440} for d in range(1, 6)],
    }


def test_a_missing_column_is_an_error() -> None:
    """An export without an availability column is refused as a whole."""
    with pytest.raises(ValueError, match="availab"):
        parse_csv("Name,Email,Time zone\nA,a@example.com,UTC\n")
