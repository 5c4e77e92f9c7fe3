"""Moving a Discord server in from another leveling bot: each bot's export format, read as a stream.

Formats (fixtures in tests/fixtures/imports/ are written from these shapes):

- ``mee6``: MEE6's leaderboard JSON (``GET mee6.xyz/api/plugins/levels/leaderboard/<guild>``, pages saved
  one after another or merged): ``{"players": [{"id", "username", "xp", "level", "message_count",
  "detailed_xp": [xp into the level, XP the level needs, total XP]}], "role_rewards": [{"rank": level,
  "role_id"} or {"rank", "role": {"id", ...}}]}``. MEE6's curve: a level L takes 5 L^2 + 50 L + 100 XP, so
  level 10 starts at 4,675 XP (:func:`mee6_xp_for_level`).
- ``amari``: Amari's leaderboard JSON (``GET amaribot.com/api/v1/guild/leaderboard/<guild>``): ``{"data":
  [{"id", "username", "exp", "level", "weeklyExp"}], "count", "total_count"}``. Amari publishes no curve:
  ``--keep level`` places members at the start of their level.
- ``polaris``: Polaris's server export / leaderboard JSON: ``{"settings": {"curve": {"3", "2", "1"}, ...},
  "rewards": [{"id": role, "level"}], "leaderboard": [{"id", "xp", ...}]}``; a level L starts at
  ``3 L^3 + 2 L^2 + 1 L`` XP with the curve's coefficients (Polaris's defaults 1, 50, 100).
- ``levelup``: vrt-cogs LevelUp's server backup (``[p]leveldata backup``): ``{"users": {"<id>": {"xp",
  "level", ...}}, "levelroles": {"<level>": role id}, "algorithm": {"base", "exp"}}``; a level L starts at
  ``ceil(base * L ** exp)`` XP (defaults 100, 2).
- ``csv``: a header naming ``user_id`` (or ``id``, ``discord_id``) and ``xp`` or ``level`` (with an optional
  ``progress`` from 0 to 1, ``display_name``/``username``, and ``layers``: a JSON object of XP per layer
  adding up to ``xp``, as ``xpbase export --table profiles --format csv`` writes it).

Every reader yields :class:`Member` rows and :class:`BadRow` entries (where in the file, and why: a row is
reported, never guessed), and collects the bot's level roles in :attr:`Reader.role_rewards`. JSON is read
with ijson, so a file of a million members is never held in memory. Which XP a member ends up with (``keep``
xp or level) is decided by the database (``admin_import_members``); this module only reads.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import ijson

from xpbase.models.communities import ImportBatch, ImportedMember, RoleRewardImport

Source = Literal["mee6", "amari", "polaris", "levelup", "csv"]
SOURCES: tuple[Source, ...] = ("mee6", "amari", "polaris", "levelup", "csv")
BATCH_SIZE = 1000  # admin_import_members takes at most 1000 members
MAX_LEVEL = 100_000
DISCORD_ID = re.compile(r"^[0-9]{1,20}$")


@dataclass(frozen=True)
class Member:
    """One member as the source bot had them: XP, the bot's level, ``progress`` (0-1) into that level when the
    source tells it, and ``where`` in the file (``players[12]``, ``line 14``)."""

    where: str
    user_id: str
    xp: int
    level: int
    progress: float | None = None
    display_name: str | None = None
    layers: dict[str, int] | None = None

    def payload(self) -> dict[str, Any]:
        """The member as ``admin_import_members`` takes it."""
        member: dict[str, Any] = {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "xp": self.xp,
            "level": self.level,
            "progress": self.progress,
        }
        if self.layers is not None:
            member["layers"] = self.layers
        return member


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read: where it is in the file and why."""

    where: str
    reason: str


@dataclass(frozen=True)
class LevelRole:
    """A role the source bot gives at ``level`` (its own level numbers), and that level's XP on its curve."""

    role_id: str
    level: int
    xp: int | None


# Curves of the source bots ---------------------------------------------------------------


def mee6_xp_for_level(level: int) -> int:
    """Total XP at the start of MEE6 level ``level`` (level L -> L+1 takes 5 L^2 + 50 L + 100 XP):
    ``sum_{n<L} 5 n^2 + 50 n + 100``; 4,675 for level 10."""
    n = level
    return 5 * (n - 1) * n * (2 * n - 1) // 6 + 25 * n * (n - 1) + 100 * n


def mee6_level_for_xp(xp: int) -> int:
    """MEE6's level at ``xp`` total XP (a binary search on :func:`mee6_xp_for_level`)."""
    low, high = 0, 1
    while mee6_xp_for_level(high) <= xp:
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if mee6_xp_for_level(middle) <= xp else (low, middle)
    return low


@dataclass(frozen=True)
class PolarisCurve:
    """Polaris's cubic curve: level L starts at ``c3 L^3 + c2 L^2 + c1 L`` XP."""

    c3: float = 1
    c2: float = 50
    c1: float = 100

    def xp_for_level(self, level: int) -> int:
        return round(self.c3 * level**3 + self.c2 * level**2 + self.c1 * level)

    def level_for_xp(self, xp: int) -> int:
        level = 0
        while level < MAX_LEVEL and self.xp_for_level(level + 1) <= xp:
            level += 1
        return level


@dataclass(frozen=True)
class LevelUpCurve:
    """LevelUp's curve: level L starts at ``ceil(base * L ** exp)`` XP."""

    base: float = 100
    exp: float = 2

    def xp_for_level(self, level: int) -> int:
        return math.ceil(self.base * level**self.exp)

    def level_for_xp(self, xp: int) -> int:
        level = int((xp / self.base) ** (1 / self.exp)) if xp > 0 else 0
        while self.xp_for_level(level + 1) <= xp:
            level += 1
        while level > 0 and self.xp_for_level(level) > xp:
            level -= 1
        return level


def progress_between(xp: int, start: int, end: int) -> float | None:
    """How far ``xp`` is from ``start`` to ``end`` (0-1), None when the span is empty."""
    if end <= start:
        return None
    return min(max((xp - start) / (end - start), 0.0), 0.999999)


# Field checks --------------------------------------------------------------------------------


class RowError(ValueError):
    """Why a row cannot be read."""


def _discord_id(value: Any, name: str = "id") -> str:
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not DISCORD_ID.match(text):
        raise RowError(f"{name} must be a Discord id (1 to 20 digits), got {value!r}")
    return text


def _whole(value: Any, name: str, *, limit: int | None = None) -> int:
    if isinstance(value, bool) or value is None:
        raise RowError(
            f"{name} is missing" if value is None else f"{name} must be a whole number, got {value!r}"
        )
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"[0-9]+(\.0+)?", value):
            raise RowError(f"{name} must be a whole number, got {value!r}")
        value = Decimal(value)
    if isinstance(value, float | Decimal):
        if value != int(value):
            raise RowError(f"{name} must be a whole number, got {value}")
        value = int(value)
    if not isinstance(value, int):
        raise RowError(f"{name} must be a whole number, got {value!r}")
    if value < 0:
        raise RowError(f"{name} must be 0 or more, got {value}")
    if limit is not None and value > limit:
        raise RowError(f"{name} must be at most {limit}, got {value}")
    return value


def _name(value: Any) -> str | None:
    return value.strip()[:64] or None if isinstance(value, str) else None


# Readers ---------------------------------------------------------------------------------------


@dataclass
class Reader:
    """A stream of members (and bad rows) from one file; ``role_rewards`` fills as the file is read."""

    source: Source
    stream: IO[bytes]
    role_rewards: list[LevelRole] = field(default_factory=list)
    bad_role_rewards: list[BadRow] = field(default_factory=list)

    def __iter__(self) -> Iterator[Member | BadRow]:
        read = {
            "mee6": self._mee6,
            "amari": self._amari,
            "polaris": self._polaris,
            "levelup": self._levelup,
            "csv": self._csv,
        }[self.source]
        return read()

    def _items(self, prefixes: dict[str, str]) -> Iterator[tuple[str, int, Any]]:
        """(name, index, object) for every array item under the given ijson prefixes, in one pass."""
        builders: dict[str, Any] = {}
        counts = dict.fromkeys(prefixes.values(), 0)
        depth: dict[str, int] = {}
        for prefix, event, value in ijson.parse(self.stream):
            for item_prefix, name in prefixes.items():
                if prefix == item_prefix and name not in builders and event in ("start_map", "start_array"):
                    builders[name] = ijson.ObjectBuilder()
                    depth[name] = 0
                if name in builders:
                    builder = builders[name]
                    builder.event(event, value)
                    if event in ("start_map", "start_array"):
                        depth[name] += 1
                    elif event in ("end_map", "end_array"):
                        depth[name] -= 1
                    if depth[name] == 0:
                        yield name, counts[name], builder.value
                        counts[name] += 1
                        del builders[name]
                elif prefix == item_prefix and event in ("string", "number", "null", "boolean"):
                    yield name, counts[name], value
                    counts[name] += 1

    def _mee6(self) -> Iterator[Member | BadRow]:
        for name, i, item in self._items({"players.item": "players", "role_rewards.item": "role_rewards"}):
            where = f"{name}[{i}]"
            try:
                if not isinstance(item, dict):
                    raise RowError("not an object")
                if name == "role_rewards":
                    role = item.get("role")
                    role_id = item.get("role_id", role.get("id") if isinstance(role, dict) else None)
                    level = _whole(item.get("rank"), "rank", limit=MAX_LEVEL)
                    self.role_rewards.append(
                        LevelRole(_discord_id(role_id, "role_id"), level, mee6_xp_for_level(level))
                    )
                    continue
                user_id = _discord_id(item.get("id"))
                xp = _whole(item.get("xp"), "xp")
                level = _whole(item.get("level"), "level", limit=MAX_LEVEL)
                if (on_curve := mee6_level_for_xp(xp)) != level:
                    raise RowError(f"level {level} does not match {xp} XP on MEE6's curve (level {on_curve})")
                start, end = mee6_xp_for_level(level), mee6_xp_for_level(level + 1)
                detailed = item.get("detailed_xp")
                if detailed is not None:
                    if not (isinstance(detailed, list) and len(detailed) == 3):
                        raise RowError(
                            "detailed_xp must be [xp into the level, XP the level needs, total XP]"
                        )
                    into, needs, total = (_whole(v, "detailed_xp[]") for v in detailed)
                    if total != xp or needs != end - start or into != xp - start:
                        raise RowError(f"detailed_xp {detailed} does not match {xp} XP at level {level}")
                yield Member(
                    where, user_id, xp, level, progress_between(xp, start, end), _name(item.get("username"))
                )
            except RowError as exc:
                if name == "role_rewards":
                    self.bad_role_rewards.append(BadRow(where, str(exc)))
                else:
                    yield BadRow(where, str(exc))

    def _amari(self) -> Iterator[Member | BadRow]:
        for name, i, item in self._items({"data.item": "data"}):
            where = f"{name}[{i}]"
            try:
                if not isinstance(item, dict):
                    raise RowError("not an object")
                yield Member(
                    where,
                    _discord_id(item.get("id")),
                    _whole(item.get("exp"), "exp"),
                    _whole(item.get("level"), "level", limit=MAX_LEVEL),
                    None,
                    _name(item.get("username")),
                )
            except RowError as exc:
                yield BadRow(where, str(exc))

    def _polaris(self) -> Iterator[Member | BadRow]:
        # The curve may come after the leaderboard: read it first (one cheap pass), then stream the rest.
        curve = PolarisCurve()
        start_at = self.stream.tell()
        for coefficients in ijson.items(self.stream, "settings.curve"):
            if isinstance(coefficients, dict):
                curve = PolarisCurve(
                    float(coefficients.get("3", 1)),
                    float(coefficients.get("2", 50)),
                    float(coefficients.get("1", 100)),
                )
        self.stream.seek(start_at)
        for name, i, item in self._items({"leaderboard.item": "leaderboard", "rewards.item": "rewards"}):
            where = f"{name}[{i}]"
            try:
                if not isinstance(item, dict):
                    raise RowError("not an object")
                if name == "rewards":
                    level = _whole(item.get("level"), "level", limit=MAX_LEVEL)
                    self.role_rewards.append(
                        LevelRole(_discord_id(item.get("id"), "id"), level, curve.xp_for_level(level))
                    )
                    continue
                xp = _whole(item.get("xp"), "xp")
                level = curve.level_for_xp(xp)
                progress = progress_between(xp, curve.xp_for_level(level), curve.xp_for_level(level + 1))
                yield Member(
                    where, _discord_id(item.get("id")), xp, level, progress, _name(item.get("username"))
                )
            except RowError as exc:
                if name == "rewards":
                    self.bad_role_rewards.append(BadRow(where, str(exc)))
                else:
                    yield BadRow(where, str(exc))

    def _levelup(self) -> Iterator[Member | BadRow]:
        curve = LevelUpCurve()
        start_at = self.stream.tell()
        for algorithm in ijson.items(self.stream, "algorithm"):
            if isinstance(algorithm, dict):
                curve = LevelUpCurve(float(algorithm.get("base", 100)), float(algorithm.get("exp", 2)))
        self.stream.seek(start_at)
        for role_level, role_id in ijson.kvitems(self.stream, "levelroles"):
            where = f"levelroles[{role_level}]"
            try:
                level = _whole(role_level, "level", limit=MAX_LEVEL)
                self.role_rewards.append(
                    LevelRole(_discord_id(role_id, "role id"), level, curve.xp_for_level(level))
                )
            except RowError as exc:
                self.bad_role_rewards.append(BadRow(where, str(exc)))
        self.stream.seek(start_at)
        for user_id, item in ijson.kvitems(self.stream, "users"):
            where = f"users[{user_id}]"
            try:
                if not isinstance(item, dict):
                    raise RowError("not an object")
                xp = _whole(item.get("xp"), "xp")
                level = curve.level_for_xp(xp)
                if "level" in item and _whole(item.get("level"), "level", limit=MAX_LEVEL) != level:
                    raise RowError(
                        f"level {item['level']} does not match {xp} XP on the server's curve (level {level})"
                    )
                progress = progress_between(xp, curve.xp_for_level(level), curve.xp_for_level(level + 1))
                yield Member(where, _discord_id(user_id), xp, level, progress, None)
            except RowError as exc:
                yield BadRow(where, str(exc))

    def _csv(self) -> Iterator[Member | BadRow]:
        text = (line.decode("utf-8-sig") for line in self.stream)
        rows = csv.DictReader(text)
        fields = {(f or "").strip().lower(): f for f in rows.fieldnames or []}
        id_field = next((fields[f] for f in ("user_id", "discord_id", "id") if f in fields), None)
        if id_field is None or ("xp" not in fields and "level" not in fields):
            yield BadRow("line 1", "the header must name user_id (or id, discord_id) and xp or level")
            return
        name_field = next((fields[f] for f in ("display_name", "username", "name") if f in fields), None)
        for row in rows:
            where = f"line {rows.line_num}"
            try:
                if None in row:
                    raise RowError("more fields than the header names")
                user_id = _discord_id((row.get(id_field) or "").strip(), id_field)
                level = _whole(row[fields["level"]], "level", limit=MAX_LEVEL) if "level" in fields else 0
                xp = _whole(row[fields["xp"]], "xp") if "xp" in fields else 0
                progress = None
                if "progress" in fields and (row[fields["progress"]] or "").strip():
                    try:
                        progress = float(row[fields["progress"]])
                    except ValueError:
                        raise RowError(
                            f"progress must be a number from 0 to 1, got {row[fields['progress']]!r}"
                        ) from None
                    if not 0 <= progress <= 1:
                        raise RowError(f"progress must be from 0 to 1, got {progress}")
                layers = None
                if "layers" in fields and (row[fields["layers"]] or "").strip():
                    try:
                        layers = json.loads(row[fields["layers"]])
                    except ValueError:
                        raise RowError("layers must be a JSON object of XP per layer") from None
                    if not isinstance(layers, dict):
                        raise RowError("layers must be a JSON object of XP per layer")
                    layers = {str(k): _whole(v, f"layers.{k}") for k, v in layers.items()}
                    if sum(layers.values()) != xp:
                        raise RowError(f"layers add up to {sum(layers.values())}, not {xp} XP")
                name = _name(row.get(name_field)) if name_field else None
                yield Member(where, user_id, xp, level, progress, name, layers)
            except RowError as exc:
                yield BadRow(where, str(exc))


# Running an import ------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    """What an import did (or would do): members per status, XP granted, bad rows, level roles, the members'
    outcomes (at most ``keep_members`` of them, for the dry run's table)."""

    source: Source
    guild_id: str
    keep: Literal["xp", "level"]
    dry_run: bool
    read: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    xp_granted: int = 0
    new_profiles: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    members: list[ImportedMember] = field(default_factory=list)
    role_rewards: RoleRewardImport | None = None
    keep_members: int = 50

    def add(self, batch: ImportBatch, rows: list[Member]) -> None:
        where = {m.user_id: m.where for m in rows}
        for member in batch.members:
            self.counts[member.status] = self.counts.get(member.status, 0) + 1
            self.xp_granted += member.xp_granted
            self.new_profiles += member.status in ("imported", "zero") and member.new_profile
            if member.status in ("rejected", "conflict"):
                self.bad_rows.append(
                    BadRow(where.get(member.user_id, member.user_id), member.reason or member.status)
                )
            elif len(self.members) < self.keep_members:
                self.members.append(member)


Call = Callable[..., Awaitable[Any]]


async def run_import(
    call: Call,
    source: Source,
    stream: IO[bytes],
    guild_id: str,
    *,
    keep: Literal["xp", "level"] = "xp",
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[int], None] | None = None,
    keep_members: int = 50,
) -> ImportSummary:
    """Read ``stream`` as ``source`` and import it into server ``guild_id`` in batches through ``call``
    (an ``RPC.call``-shaped coroutine: ``call(function, **params)`` answering the typed models).

    Bad rows are collected with where and why, never sent. Level roles are copied after the members (their
    level on xpbase's curve: the same number with ``keep`` level, else the level of the XP the role took on
    the source's curve). ``on_progress(bytes read so far)`` is called after each batch. Raises DomainError
    (XPBAD) when the database refuses a batch, ValueError for a duplicated member in one batch.
    """
    reader = Reader(source, stream)
    summary = ImportSummary(source, guild_id, keep, dry_run, keep_members=keep_members)
    batch: list[Member] = []

    async def flush() -> None:
        if not batch:
            return
        result: ImportBatch = await call(
            "admin_import_members",
            source=source,
            guild_id=guild_id,
            keep=keep,
            members=[m.payload() for m in batch],
            dry_run=dry_run,
        )
        summary.add(result, batch)
        batch.clear()
        if on_progress is not None:
            on_progress(stream.tell())

    seen_in_batch: set[str] = set()
    for row in reader:
        if isinstance(row, BadRow):
            summary.bad_rows.append(row)
            continue
        summary.read += 1
        if row.user_id in seen_in_batch:
            summary.bad_rows.append(BadRow(row.where, f"member {row.user_id} appears twice in the file"))
            continue
        batch.append(row)
        seen_in_batch.add(row.user_id)
        if len(batch) >= batch_size:
            await flush()
            seen_in_batch.clear()
    await flush()
    summary.bad_rows.extend(reader.bad_role_rewards)
    if reader.role_rewards:
        rewards = []
        for role in reader.role_rewards:
            level = (
                role.level if keep == "level" or role.xp is None else await call("level_for_xp", xp=role.xp)
            )
            rewards.append({"role_id": role.role_id, "min_level": max(int(level), 1)})
        summary.role_rewards = await call(
            "admin_import_role_rewards", guild_id=guild_id, rewards=rewards, dry_run=dry_run
        )
    return summary


def open_source(path: Path) -> IO[bytes]:
    """The file to import, opened for binary streaming."""
    return path.open("rb")
