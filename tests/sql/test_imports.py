"""Importers (supabase/sql/92_imports.sql, xpbase/importers.py): each bot's format on its fixture, bad rows
with where and why, a second run changing nothing, --keep level on xpbase's curve, role rewards and the
role resync queued for the bot."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError
from xpbase.importers import (
    LevelUpCurve,
    PolarisCurve,
    Reader,
    mee6_level_for_xp,
    mee6_xp_for_level,
    run_import,
)
from xpbase.rpc import PostgresRPC

FIXTURES = Path(__file__).parent.parent / "fixtures" / "imports"
GUILD = "700000000000000001"


async def _run(db: Database, source: str, name: str, **options):
    rpc = PostgresRPC(db)
    with (FIXTURES / name).open("rb") as stream:
        return await run_import(rpc.call, source, stream, GUILD, **options)


async def _ledger(db: Database) -> list[tuple[str, int]]:
    async with acting_as(db, "service_role") as conn:
        rows = await conn.fetch(
            "select i.subject, l.amount from public.xp_ledger l"
            " join public.identities i on i.profile_id = l.profile_id and i.provider = 'discord'"
            " where l.activity_slug = 'import' order by i.subject"
        )
    return [(r["subject"], r["amount"]) for r in rows]


def test_mee6_curve_matches_the_published_table() -> None:
    """MEE6: a level L takes 5 L^2 + 50 L + 100 XP; level 10 starts at 4,675 XP (MEE6's published table)."""
    assert [mee6_xp_for_level(level) for level in (0, 1, 2, 3, 10)] == [0, 100, 255, 475, 4675]
    assert mee6_level_for_xp(4674) == 9 and mee6_level_for_xp(4675) == 10
    assert PolarisCurve().xp_for_level(1) == 151 and PolarisCurve().level_for_xp(150) == 0
    assert LevelUpCurve().xp_for_level(3) == 900 and LevelUpCurve().level_for_xp(899) == 2


async def test_mee6_keep_xp_imports_members_roles_and_lists_bad_rows(db: Database) -> None:
    """--keep xp keeps each number; bad rows are listed with where and why; role rewards go to the server
    at the xpbase level of the XP the role took on MEE6; a resync is queued; membership is recorded."""
    summary = await _run(db, "mee6", "mee6.json", keep="xp")
    assert summary.counts == {"imported": 3}
    assert summary.xp_granted == 4675 + 5225 + 99
    assert [(b.where, b.reason.split(",")[0]) for b in summary.bad_rows] == [
        ("players[3]", "id must be a Discord id (1 to 20 digits)"),
        ("players[4]", "level 3 does not match 4675 XP on MEE6's curve (level 10)"),
        ("players[5]", "xp must be 0 or more"),
    ]
    assert await _ledger(db) == [
        ("100000000000000001", 4675),
        ("100000000000000002", 5225),
        ("100000000000000003", 99),
    ]
    # MEE6 level 5 starts at 1,275 XP (xpbase level 4 starts at 1,050), level 10 at 4,675 XP (xpbase
    # level 7 starts at 3,900).
    assert summary.role_rewards is not None
    assert [(r.role_id, r.min_level, r.status) for r in summary.role_rewards.rewards] == [
        ("800000000000000005", 4, "added"),
        ("800000000000000010", 7, "added"),
    ]
    taken = await db.rpc("service_role_discord_take_role_resyncs")
    assert [r["guild_id"] for r in taken["resyncs"]] == [GUILD]
    board = await db.rpc_rows("guild_leaderboard", role="anon", guild_id=GUILD)
    assert [(r["display_name"], r["xp"]) for r in board] == [
        ("Grace 🌸", 5225),
        ("ada", 4675),
        ("李小龍", 99),
    ]
    async with acting_as(db, "service_role") as conn:
        # Levels reached by import are not news: no notification, so no DM, push or email to the server.
        assert await conn.fetchval("select count(*) from public.notifications") == 0
        # Imported XP is moved in, not earned here: no points; and no level-up for the bot to announce.
        assert await conn.fetchval("select coalesce(sum(points), 0) from public.profiles") == 0
    announced = await db.rpc("service_role_discord_notifications", after_id=0)
    assert announced["notifications"] == []


async def test_second_run_changes_nothing_and_other_figures_conflict(db: Database) -> None:
    """Running the same import twice writes nothing the second time; the same members with other figures
    (here --keep level) are reported as conflicts, and nothing is written."""
    await _run(db, "mee6", "mee6.json", keep="xp")
    again = await _run(db, "mee6", "mee6.json", keep="xp")
    assert again.counts == {"unchanged": 3} and again.xp_granted == 0
    other = await _run(db, "mee6", "mee6.json", keep="level")
    assert other.counts == {"conflict": 3}
    assert other.bad_rows[-1].reason == "imported before with 99 XP (keep xp)"
    assert len(await _ledger(db)) == 3


async def test_mee6_keep_level_places_members_on_xpbase_curve(db: Database) -> None:
    """--keep level: MEE6 level 10 with no progress starts xpbase level 10 (8,550 XP); halfway through level
    10 is halfway through xpbase's level 10 (span 1,950); MEE6 level 0 counts as level 1."""
    summary = await _run(db, "mee6", "mee6.json", keep="level")
    assert await _ledger(db) == [
        ("100000000000000001", 8550),
        ("100000000000000002", 8550 + 975),
        ("100000000000000003", 148),
    ]
    assert {m.user_id: m.level for m in summary.members}["100000000000000001"] == 10
    assert summary.role_rewards is not None
    assert [r.min_level for r in summary.role_rewards.rewards] == [5, 10]


async def test_dry_run_answers_the_same_and_writes_nothing(db: Database) -> None:
    """A dry run reports what would change (statuses, XP, levels, roles) and writes nothing at all."""
    dry = await _run(db, "mee6", "mee6.json", keep="xp", dry_run=True)
    assert dry.counts == {"imported": 3} and dry.xp_granted == 4675 + 5225 + 99
    assert {m.user_id: (m.new_profile, m.level) for m in dry.members}["100000000000000002"] == (True, 7)
    async with acting_as(db, "service_role") as conn:
        for table in (
            "profiles",
            "xp_ledger",
            "discord_role_rewards",
            "discord_role_resyncs",
            "discord_guild_members",
        ):
            assert await conn.fetchval(f"select count(*) from public.{table}") == 0, table


@pytest.mark.parametrize(
    ("source", "name", "ledger", "bad", "roles"),
    [
        (
            "amari",
            "amari.json",
            [("200000000000000001", 1500), ("200000000000000002", 320)],
            [("data[2]", "exp must be a whole number, got 12.5")],
            [],
        ),
        (
            "polaris",
            "polaris.json",
            [("300000000000000001", 151), ("300000000000000002", 420)],
            [("leaderboard[2]", "xp is missing")],
            [("810000000000000002", 2)],  # Polaris level 2 starts at 408 XP: xpbase level 2 (150-499)
        ),
        (
            "levelup",
            "levelup.json",
            [("400000000000000001", 400), ("400000000000000002", 950)],
            [("users[400000000000000003]", "level 4 does not match 50 XP on the server's curve (level 0)")],
            [("820000000000000003", 3)],  # LevelUp level 3 starts at 900 XP: xpbase level 3 (500-1049)
        ),
        (
            "csv",
            "members.csv",
            [("500000000000000001", 250), ("500000000000000003", 1000)],
            [
                ("line 3", "xp must be a whole number, got 'abc'"),
                ("line 5", "member 500000000000000001 appears twice in the file"),
            ],
            [],
        ),
    ],
)
async def test_each_format_on_its_fixture(db: Database, source, name, ledger, bad, roles) -> None:
    """Amari, Polaris, LevelUp and CSV files: members imported with their XP, bad rows listed, level roles."""
    summary = await _run(db, source, name, keep="xp")
    assert await _ledger(db) == ledger
    assert [(b.where, b.reason) for b in summary.bad_rows] == bad
    got = [(r.role_id, r.min_level) for r in summary.role_rewards.rewards] if summary.role_rewards else []
    assert got == roles


async def test_only_admins_import_and_malformed_batches_are_refused(db: Database) -> None:
    """A member may not import; a batch with a malformed member is refused whole (XPBAD), nothing written."""
    member = await new_profile(db, "M")
    with pytest.raises(DomainError) as refused:
        await db.rpc(
            "admin_import_members",
            role="authenticated",
            claims=member_claims(member),
            source="csv",
            guild_id=GUILD,
            keep="xp",
            members=[{"user_id": "1", "xp": 1, "level": 0}],
        )
    assert refused.value.error.sqlstate == "42501"
    with pytest.raises(DomainError) as bad:
        await db.rpc(
            "admin_import_members",
            source="csv",
            guild_id=GUILD,
            keep="xp",
            members=[{"user_id": "1", "xp": 1, "level": 0}, {"user_id": "2", "xp": -1, "level": 0}],
        )
    assert bad.value.error.sqlstate == "XPBAD"
    assert await _ledger(db) == []


def test_reader_streams_a_file_it_never_loads_whole(tmp_path: Path) -> None:
    """The reader yields members as it reads: after the first member of a 20,000-member MEE6 file, most of
    the file is still unread."""
    path = tmp_path / "big.json"
    players = ",".join(
        f'{{"id": "{10**17 + i}", "username": "m{i}", "xp": 100, "level": 1, "message_count": 1}}'
        for i in range(20_000)
    )
    path.write_text(f'{{"players": [{players}], "role_rewards": []}}')
    with path.open("rb") as stream:
        rows = iter(Reader("mee6", stream))
        first = next(rows)
        assert getattr(first, "user_id", None) == str(10**17)
        assert stream.tell() < path.stat().st_size / 4
