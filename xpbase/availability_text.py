"""Professionals' availability from a Google Forms export: free text made into weekly local intervals.

A form asks each professional for their name, email, time zone and "When
are you usually available?". ``parse_text`` reads answers such as "Weekdays
after 6pm EST", "Tue/Thu 7-9pm PT", "Sat 10am-1pm Europe/Berlin" or
"Mon, Wed 18:00-20:00; Sat 9-11am" into weekly intervals (ISO weekday,
minutes after local midnight) in one IANA time zone. ``parse_csv`` does it
for every row of an export and lists each row it could not read, with the
reason. Nothing is guessed; the fixed readings are:

- days: names and abbreviations (``Tue``, ``Thurs``, ``Mondays``), lists
  (``/ , & and``), ranges (``Mon-Fri``, ``Monday to Friday``),
  ``weekdays`` (Mon-Fri), ``weekends`` (Sat-Sun), ``daily``/``every day``;
- times: ``7-9pm`` (a start without am/pm takes the end's when that keeps
  it before the end: 7pm-9pm, 10-1pm is 10am-1pm), ``10am-1pm``,
  ``18:00-20:00``, ``9-17`` (24-hour when a number is above 12),
  ``noon``, ``midnight``, ``after 6pm`` (until midnight); a range that
  passes midnight continues on the next day;
- zones: IANA names (``Europe/Berlin``), the US zone abbreviations read as
  their city zones with DST (``EST``/``EDT``/``ET``/``Eastern`` is
  America/New_York; likewise Central, Mountain, Pacific), ``GMT``/``UTC``,
  ``BST`` (Europe/London), ``CET``/``CEST`` (Europe/Berlin),
  ``AEST``/``AEDT`` (Australia/Sydney), ``JST``, ``SGT``; a zone in the text
  wins over the form's time zone column only when they agree or the column
  is empty.

Unreadable: times without am/pm that could be either ("9-5"), vague words
("evenings", "flexible"), ``IST`` (India, Israel or Ireland), two different
zones, no zone at all, hours outside 0-24, and any word not listed here.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = {
    "mon": 1, "monday": 1, "mondays": 1,
    "tue": 2, "tues": 2, "tuesday": 2, "tuesdays": 2,
    "wed": 3, "weds": 3, "wednesday": 3, "wednesdays": 3,
    "thu": 4, "thur": 4, "thurs": 4, "thursday": 4, "thursdays": 4,
    "fri": 5, "friday": 5, "fridays": 5,
    "sat": 6, "saturday": 6, "saturdays": 6,
    "sun": 7, "sunday": 7, "sundays": 7,
}  # fmt: skip
DAY_GROUPS = {
    "weekdays": {1, 2, 3, 4, 5},
    "weekday": {1, 2, 3, 4, 5},
    "weeknights": {1, 2, 3, 4, 5},
    "weekends": {6, 7},
    "weekend": {6, 7},
    "daily": set(range(1, 8)),
    "everyday": set(range(1, 8)),
    "every day": set(range(1, 8)),
    "any day": set(range(1, 8)),
}
ZONES = {
    **dict.fromkeys(("est", "edt", "et", "eastern"), "America/New_York"),
    **dict.fromkeys(("cst", "cdt", "ct", "central"), "America/Chicago"),
    **dict.fromkeys(("mst", "mdt", "mt", "mountain"), "America/Denver"),
    **dict.fromkeys(("pst", "pdt", "pt", "pacific"), "America/Los_Angeles"),
    **dict.fromkeys(("gmt", "utc"), "UTC"),
    "bst": "Europe/London",
    **dict.fromkeys(("cet", "cest"), "Europe/Berlin"),
    **dict.fromkeys(("aest", "aedt"), "Australia/Sydney"),
    "jst": "Asia/Tokyo",
    "sgt": "Asia/Singapore",
}
AMBIGUOUS_ZONES = {"ist": "IST could be India, Israel or Ireland time"}
FILLER = {"and", "or", "on", "from", "at", "between", "&", ",", "/", ";", "time", "available", "free", "s"}
VAGUE = {
    "morning", "mornings", "afternoon", "afternoons", "evening", "evenings", "night", "nights", "lunch",
    "flexible", "anytime", "whenever", "tbd", "varies", "depends", "usually", "sometimes", "most",
}  # fmt: skip

_CLOCK = r"(?:\d{1,2}(?:[:.]\d{2})?\s*(?:am|pm|a\.m\.|p\.m\.)?|noon|midnight)"
_DAY = r"(?:" + "|".join(sorted(DAYS, key=len, reverse=True)) + r")\b"
TOKEN = re.compile(
    rf"(?P<after>\bafter\s+(?P<after_t>{_CLOCK}))"
    rf"|(?P<range>(?P<a>{_CLOCK})\s*(?:-|to)\s*(?P<b>{_CLOCK}))"
    rf"|(?P<dayrange>\b(?P<d1>{_DAY})\s*(?:-|to)\s*(?P<d2>{_DAY}))"
    r"|(?P<group>\b(?:every day|any day|weekdays|weekday|weeknights|weekends|weekend|daily|everyday)\b)"
    rf"|(?P<day>\b{_DAY})"
    r"|(?P<word>[a-z0-9:.']+|[^\sa-z0-9])"
)


@dataclass(frozen=True)
class Interval:
    """[start_minute, end_minute) on ISO ``weekday`` (1 Monday .. 7 Sunday), local time; end up to 1440."""

    weekday: int
    start_minute: int
    end_minute: int

    def as_dict(self) -> dict[str, int]:
        return {"weekday": self.weekday, "start_minute": self.start_minute, "end_minute": self.end_minute}


@dataclass
class Parsed:
    """One readable answer: weekly intervals in ``time_zone`` (IANA)."""

    time_zone: str
    weekly: list[Interval]

    def describe(self) -> str:
        """A compact form for reading and tests: ``1 18:00-24:00, 3 18:00-24:00 @America/New_York``."""

        def hhmm(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"

        parts = [f"{i.weekday} {hhmm(i.start_minute)}-{hhmm(i.end_minute)}" for i in self.weekly]
        return ", ".join(parts) + f" @{self.time_zone}"


class Unreadable(ValueError):
    """An answer the parser will not read; ``str()`` says why."""


@dataclass
class Row:
    """One row of the export: ``line`` is its line number in the file (the header is line 1)."""

    line: int
    name: str
    email: str
    text: str
    parsed: Parsed | None = None
    reason: str | None = None


@dataclass
class CsvResult:
    rows: list[Row] = field(default_factory=list)

    @property
    def readable(self) -> list[Row]:
        return [r for r in self.rows if r.parsed is not None]

    @property
    def unreadable(self) -> list[Row]:
        return [r for r in self.rows if r.parsed is None]

    def import_rows(self) -> list[dict[str, object]]:
        """The readable rows as admin_import_review_availability expects them."""
        return [
            {
                "name": r.name,
                "email": r.email,
                "time_zone": r.parsed.time_zone,
                "weekly": [i.as_dict() for i in r.parsed.weekly],
            }
            for r in self.readable
            if r.parsed is not None
        ]


def _zone_name(text: str) -> str | None:
    """An IANA zone name as written (any case), or None."""
    wanted = text.strip().lower()
    for name in _zone_names():
        if name.lower() == wanted:
            return name
    return None


_ZONE_CACHE: dict[str, str] = {}


def _zone_names() -> list[str]:
    if not _ZONE_CACHE:
        _ZONE_CACHE.update({n: n for n in available_timezones() if "/" in n or n == "UTC"})
    return list(_ZONE_CACHE)


def _clock(text: str) -> tuple[int, str | None]:
    """(minutes, 'am'/'pm'/None) of one clock time; Unreadable for hours or minutes out of range."""
    t = text.replace(" ", "").replace(".m.", "m").replace("a.m", "am").replace("p.m", "pm")
    if t == "noon":
        return 720, "pm"
    if t == "midnight":
        return 1440, "am"
    m = re.fullmatch(r"(\d{1,2})(?:[:.](\d{2}))?(am|pm)?", t)
    if not m:
        raise Unreadable(f"not a time: {text!r}")
    hour, minute, meridiem = int(m.group(1)), int(m.group(2) or 0), m.group(3)
    if minute > 59 or hour > 24 or (meridiem and not 1 <= hour <= 12) or (hour == 24 and minute):
        raise Unreadable(f"not a time of day: {text!r}")
    return hour * 60 + minute, meridiem


def _with_meridiem(minutes: int, meridiem: str) -> int:
    hour = (minutes // 60) % 12 + (12 if meridiem == "pm" else 0)
    return hour * 60 + minutes % 60


def _time_range(a: str, b: str) -> tuple[int, int]:
    """[start, end) minutes of a written range; end may be 1440. Unreadable when am/pm cannot be told."""
    (sa, ma), (sb, mb) = _clock(a), _clock(b)
    if a.strip() == "midnight":
        sa, ma = 0, "am"
    if ma is None and mb is None:
        if sa <= 12 * 60 and sb <= 12 * 60 and ":" not in a + b:
            raise Unreadable(f"{a}-{b}: say am or pm")
        return sa, sb
    if ma and mb:
        start, end = _with_meridiem(sa, ma), (1440 if b.strip() == "midnight" else _with_meridiem(sb, mb))
    elif mb:
        end = 1440 if b.strip() == "midnight" else _with_meridiem(sb, mb)
        same = _with_meridiem(sa, mb)
        start = same if same < end else _with_meridiem(sa, "am" if mb == "pm" else "pm")
    else:
        start = _with_meridiem(sa, ma or "am")
        same = _with_meridiem(sb, ma or "am")
        end = same if same > start else _with_meridiem(sb, "am" if ma == "pm" else "pm")
    if end == 0:
        end = 1440
    return start, end


def _after(text: str) -> tuple[int, int]:
    minutes, meridiem = _clock(text)
    if meridiem is None and minutes <= 12 * 60 and ":" not in text:
        raise Unreadable(f"after {text}: say am or pm")
    start = _with_meridiem(minutes, meridiem) if meridiem else minutes
    return start, 1440


def _zones_in(text: str) -> tuple[str, set[str]]:
    """The text without its zone words, and the zones they name. Unreadable for an ambiguous abbreviation."""
    found: set[str] = set()

    def iana(m: re.Match[str]) -> str:
        name = _zone_name(m.group(0))
        if name is None:  # "Tue/Thu" is days, not a zone
            return m.group(0)
        found.add(name)
        return " "

    text = re.sub(r"\b[A-Za-z_]+/[A-Za-z_]+(?:/[A-Za-z_]+)?\b", iana, text)

    def abbrev(m: re.Match[str]) -> str:
        word = m.group(1).lower()
        if word in AMBIGUOUS_ZONES:
            raise Unreadable(AMBIGUOUS_ZONES[word])
        found.add(ZONES[word])
        return " "

    words = "|".join(sorted(list(ZONES) + list(AMBIGUOUS_ZONES), key=len, reverse=True))
    text = re.sub(rf"\(?\b({words})\b(?:\s+time)?\)?", abbrev, text, flags=re.IGNORECASE)
    return text, found


def parse_text(text: str, form_time_zone: str = "") -> Parsed:
    """Weekly intervals and zone from one free-text answer; raises Unreadable naming what it could not read.

    ``form_time_zone`` is the answer to the form's time zone question (an
    IANA name or one of the abbreviations above), used when the text names none.
    """
    if not text or not text.strip():
        raise Unreadable("empty answer")
    rest, zones = _zones_in(text)
    column = form_time_zone.strip()
    if column:
        col_rest, col_zones = _zones_in(column)
        if col_rest.strip() or len(col_zones) != 1:
            raise Unreadable(f"time zone column not understood: {column!r}")
        zones |= col_zones if not zones or zones == col_zones else {"conflict"}
    if "conflict" in zones or len(zones) > 1:
        raise Unreadable("two different time zones")
    if not zones:
        raise Unreadable("no time zone")
    zone = zones.pop()
    try:
        ZoneInfo(zone)
    except ZoneInfoNotFoundError as exc:  # pragma: no cover - the maps hold real zones
        raise Unreadable(f"unknown time zone: {zone}") from exc

    lowered = rest.lower().replace("–", "-").replace("—", "-")
    lowered = re.sub(r"\b(through|thru|until|till)\b", "to", lowered)
    tokens: list[tuple[str, object]] = []
    for m in TOKEN.finditer(lowered):
        if m.group("after"):
            tokens.append(("time", _after(m.group("after_t"))))
        elif m.group("range"):
            tokens.append(("time", _time_range(m.group("a"), m.group("b"))))
        elif m.group("dayrange"):
            d1, d2 = DAYS[m.group("d1")], DAYS[m.group("d2")]
            span = list(range(d1, d2 + 1)) if d1 <= d2 else [*range(d1, 8), *range(1, d2 + 1)]
            tokens.append(("days", set(span)))
        elif m.group("group"):
            tokens.append(("days", set(DAY_GROUPS[m.group("group")])))
        elif m.group("day"):
            tokens.append(("days", {DAYS[m.group("day")]}))
        else:
            word = m.group("word")
            if word in FILLER:
                continue
            if word in VAGUE:
                raise Unreadable(f"too vague: {word!r}")
            raise Unreadable(f"not understood: {word!r}")

    groups: list[tuple[set[int], list[tuple[int, int]]]] = []
    days: set[int] = set()
    times: list[tuple[int, int]] = []
    last = ""
    for kind, value in tokens:
        if kind == "days":
            if days and times and last == "time":
                groups.append((days, times))
                days, times = set(), []
            days |= value  # type: ignore[arg-type]
        else:
            if days and times and last == "days":
                groups.append((days, times))
                days, times = set(), []
            times.append(value)  # type: ignore[arg-type]
        last = kind
    if days or times:
        groups.append((days, times))
    if not groups:
        raise Unreadable("no days or times")
    weekly: set[Interval] = set()
    for g_days, g_times in groups:
        if not g_days:
            raise Unreadable("times without days")
        if not g_times:
            raise Unreadable("days without times")
        for day in g_days:
            for start, end in g_times:
                if start == end:
                    raise Unreadable("a range of zero length")
                if end > start:
                    weekly.add(Interval(day, start, end))
                else:  # past midnight: the rest on the next day
                    weekly.add(Interval(day, start, 1440))
                    if end > 0:
                        weekly.add(Interval(day % 7 + 1, 0, end))
    return Parsed(zone, sorted(weekly, key=lambda i: (i.weekday, i.start_minute, i.end_minute)))


def _column(header: list[str], *words: str) -> int:
    for i, title in enumerate(header):
        if any(w in title.lower() for w in words):
            return i
    raise ValueError(f"the export has no column for {words[0]} (columns: {header})")


def parse_csv(data: str) -> CsvResult:
    """Every row of a Google Forms CSV export (columns found by their titles: name, email, time zone,
    availability). Raises ValueError when a column is missing; unreadable rows are in ``unreadable``."""
    reader = csv.reader(io.StringIO(data))
    header = next(reader, None)
    if not header:
        raise ValueError("the export is empty")
    c_email = _column(header, "email")
    c_name = (
        next(i for i in range(len(header)) if i != c_email and "name" in header[i].lower())
        if any("name" in h.lower() for i, h in enumerate(header) if i != c_email)
        else _column(header, "name")
    )
    c_zone = _column(header, "time zone", "timezone")
    c_text = _column(header, "availab", "when ")
    result = CsvResult()
    for line, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue
        cells = cells + [""] * (len(header) - len(cells))
        row = Row(line, cells[c_name].strip(), cells[c_email].strip(), cells[c_text].strip())
        if not row.email or "@" not in row.email:
            row.reason = "no email"
        elif not row.name:
            row.reason = "no name"
        else:
            try:
                row.parsed = parse_text(row.text, cells[c_zone])
            except Unreadable as exc:
                row.reason = str(exc)
        result.rows.append(row)
    return result
