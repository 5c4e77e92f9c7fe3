"""The set-based import (private.import_members in supabase/sql/92_imports.sql, issue 17) against the
per-member import it replaced: the same batches run on two databases cloned from the same template, one
with the set-based import, one with the per-member import as it was
(tests/sql/reference/import_members_per_member.sql: each member through ensure_profile and apply_xp, every
per-row trigger firing). Answers and errors must be
identical, and so must everything written: profiles, identities, ledger rows with their requests and receipts,
layer and season totals, badges, leaderboard counts, server membership, notifications (none). Then the
invariants on the set-based side: cached totals are ledger sums, counts are what a rebuild computes.

The batches mix a few hundred members: new and existing profiles, members hidden from the boards or who left
one board, zero XP, rejected rows, one Discord id several times in a batch, layers from an xpbase export, keep
level, seasons counted or not, a second run (unchanged), other figures (conflict) and a dry run."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pytest_postgresql.executors.noop import NoopExecutor

from tests.conftest import cloned_database
from xpbase.db import Database
from xpbase.errors import DomainError

REFERENCE = Path(__file__).parent / "reference" / "import_members_per_member.sql"
GUILD = "700000000000000017"
COUNTED = "update public.activity_types set counts_for_season = true where slug = 'import'"
# The running reality season finalised: imports into reality count for no season (season_closed).
CLOSED = "update public.seasons set finalized_at = now() where layer_slug = 'reality'"

BADGES = """
insert into public.badges
       (slug, name, kind, threshold, activities, layer_slug, status_slug, tier_slug, position)
values ('xp_5k', 'Five thousand', 'total_xp', 5000, null, null, null, null, 50),
       ('tier_member', 'Member tier', 'tier', 1, null, null, null, 'member', 51),
       ('cyber_synced', 'Synced', 'layer_status', 1, null, 'cyber', 'synced', null, 52),
       ('reality_awakened', 'Awakened', 'layer_status', 1, null, 'reality', 'awakened', null, 53),
       ('moved_in', 'Moved in', 'activity_count', 1, '{import}', null, null, null, 54),
       ('two_imports', 'Twice moved', 'activity_count', 2, '{import}', null, null, null, 55),
       ('first_import', 'First import', 'first_time', 1, '{import}', null, null, null, 56),
       ('import_day', 'Import day', 'streak', 1, '{import}', null, null, null, 57)
"""

NAMES = [
    "ada",
    "",
    None,
    "  spaced out  ",
    "\u200bzero\u200b width",
    "\u202e\u200b",
    "x" * 80,
    "李小龍 🌸",
    "e\u0301",
]


@pytest.fixture
async def reference_db(xpbase_template: NoopExecutor) -> AsyncIterator[Database]:
    """A second database from the same template, with the per-member import instead of the set-based one."""
    with cloned_database(xpbase_template, "xpbase_ref") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(REFERENCE.read_text())
        finally:
            await conn.close()
        database = await Database.connect(url, min_size=1, max_size=4)
        try:
            yield database
        finally:
            await database.close()


def member(user_id: int, xp: int, level: int = 0, name: str | None = None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"user_id": str(user_id), "xp": xp, "level": level, **extra}
    if name is not None:
        row["display_name"] = name
    return row


EXISTING = [900000000000000000 + i for i in range(30)]
NEW = [100000000000000000 + i for i in range(160)]


def batches() -> list[tuple[str, str, list[dict[str, Any]], bool]]:
    """(source, keep, members, dry_run) in the order both databases run them."""
    rng = random.Random(17)
    first = []
    for i, uid in enumerate(NEW[:150]):
        xp = 0 if i % 13 == 0 else rng.choice([rng.randrange(1, 600), rng.randrange(600, 60_000), 2_000_000])
        first.append(member(uid, xp, name=NAMES[i % len(NAMES)]))
    for i, uid in enumerate(EXISTING):
        first.append(member(uid, rng.randrange(0, 30_000) if i % 7 else 0, name="renamed"))
    first += [member(NEW[150], 3_000_000_000), member(NEW[151], 2_147_483_648)]  # more than 2^31 - 1 XP
    # One Discord id several times: zero then XP, the same twice, other figures, rejected then imported.
    first += [member(NEW[152], 0), member(NEW[152], 500), member(NEW[153], 300), member(NEW[153], 300)]
    first += [member(NEW[154], 300), member(NEW[154], 400), member(EXISTING[5], 5000)]
    first += [member(NEW[155], 3_000_000_000), member(NEW[155], 70)]
    rng.shuffle(first)

    layered = []  # an xpbase export moved back in (keep xp, XP per layer), into counted seasons
    for i, uid in enumerate(EXISTING[10:20] + NEW[100:130] + NEW[156:160]):
        cyber, reality = rng.randrange(0, 8000), rng.randrange(0, 3000) if i % 4 else 0
        layered.append(member(uid, cyber + reality, layers={"cyber": cyber, "reality": reality}))
    layered.append(member(NEW[158], 0, layers={"cyber": 0}))

    by_level = []  # keep level: MEE6-style levels and progress on xpbase's curve; levels past it rejected
    for i, uid in enumerate(EXISTING[20:30] + NEW[130:150] + NEW[:10]):
        level = rng.choice([0, 1, 5, 10, 42, 99, 100, 101, 150])
        progress = None if i % 3 == 0 else round(rng.random(), 3)
        by_level.append(member(uid, 0, level, progress=progress))

    conflicting = [member(m["user_id"], m["xp"] + 1) for m in first[:25] if int(m["user_id"]) != NEW[151]]
    dry = [member(uid, 12_345) for uid in EXISTING[:5] + NEW[:5] + [100000000000009999]]
    return [
        ("mee6", "xp", first, False),
        ("csv", "xp", layered, False),
        ("amari", "level", by_level, False),
        ("mee6", "xp", first, False),  # the second run: unchanged (or zero) everywhere
        ("mee6", "xp", conflicting, False),
        ("polaris", "xp", dry, True),
    ]


MALFORMED = [
    [member(1, 5), {"user_id": "x1", "xp": 1, "level": 0}],
    [member(1, 5), member(2, -1), {"user_id": "3", "xp": "a", "level": 0}],
    [member(1, 5), {"user_id": "2", "xp": 1.5, "level": 0}],
    [member(1, 5), member(2, 1, 100001)],
    [member(1, 5), member(2, 1, progress=2)],
    [member(1, 5), member(2, 1, progress="half")],
    [member(1, 5), member(2, 10, layers={"cyber": 4, "reality": 5})],
    [member(1, 5), member(2, 10, layers={"cyber": 10, "moon": 0})],
    [member(1, 5), member(2, 10, layers={"cyber": "10"})],
    [member(1, 5), member(2, 10**20), member(3, -1)],
    [member(1, 5), member(2, -1), member(3, 10**20)],
    ["not a member"],
]


async def setup(db: Database) -> None:
    """The same state before the imports on both sides: badges, members with XP, hidden and left boards."""
    async with db.pool.acquire() as conn:
        await conn.execute(BADGES)
    ids = {}
    for i, uid in enumerate(EXISTING):
        ids[uid] = await db.rpc(
            "ensure_profile", provider="discord", subject=str(uid), display_name=f"old {i}"
        )
        if i % 3:
            await db.rpc(
                "award_xp",
                profile_id=ids[uid],
                activity="daily_check_in",
                idempotency_key=f"setup:{uid}",
                amount=400 * i,
            )
        if i % 4 == 0:
            await db.rpc(
                "award_xp",
                profile_id=ids[uid],
                activity="challenge_completed",
                idempotency_key=f"setup-r:{uid}",
                amount=10 + 30 * i,
            )
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update public.profiles set leaderboard_visible = false where id = any($1::uuid[])",
            [ids[EXISTING[1]], ids[EXISTING[12]], ids[EXISTING[21]]],
        )
        await conn.executemany(
            "insert into public.leaderboard_hidden_boards (profile_id, board, scope) values ($1, $2, $3)",
            [
                (ids[EXISTING[2]], "all_time", ""),
                (ids[EXISTING[13]], "layer", "cyber"),
                (ids[EXISTING[14]], "season", "cyber"),
                (ids[EXISTING[16]], "season", "reality"),
                (ids[EXISTING[22]], "layer", "reality"),
            ],
        )


async def run(db: Database, source: str, keep: str, members: list[Any], dry_run: bool) -> Any:
    try:
        return await db.rpc(
            "admin_import_members", source=source, guild_id=GUILD, keep=keep, members=members, dry_run=dry_run
        )
    except DomainError as error:
        return ("error", error.error.sqlstate, error.message)
    except asyncpg.PostgresError as error:  # bigint out of range (22003): XP past what the database holds
        return ("error", error.sqlstate, str(error))


STATE = {
    "profiles": """
        select i.subject, p.display_name, p.xp, p.level, p.tier, p.points, p.leaderboard_visible,
               p.xp_reached_at = coalesce((select max(l.occurred_at) from public.xp_ledger l
                                            where l.profile_id = p.id and l.amount <> 0),
                                          p.created_at) as reached
          from public.profiles p join public.identities i on i.profile_id = p.id and i.provider = 'discord'
         order by i.subject""",
    "identities": "select provider, subject, display_name from public.identities order by provider, subject",
    "ledger": """
        select i.subject, l.activity_slug, l.layer_slug, l.season_id, l.amount, l.season_amount, l.points,
               l.idempotency_key, l.actor_id, l.actor_role, l.reason, l.reverses_id,
               l.subject as ledger_subject, l.request - 'profile_id' as request,
               l.receipt - 'occurred_at' - 'profile_id' - 'ledger_id' as receipt,
               (l.receipt ->> 'profile_id')::uuid = l.profile_id as receipt_profile,
               (l.receipt ->> 'ledger_id')::bigint = min(l.id) over (partition by l.idempotency_key)
                 as receipt_ledger_id,
               l.receipt ->> 'occurred_at' = private.utc_text(l.occurred_at) as receipt_occurred_at,
               row_number() over (partition by l.profile_id order by l.id) as nth_of_member
          from public.xp_ledger l
          join public.identities i on i.profile_id = l.profile_id and i.provider = 'discord'
         order by l.idempotency_key, l.layer_slug""",
    "layers": """
        select i.subject, pl.layer_slug, pl.xp, pl.status
          from public.profile_layers pl join public.identities i on i.profile_id = pl.profile_id
         order by 1, 2""",
    "seasons": "select id, layer_slug, name, starts_at, ends_at from public.seasons order by id",
    "season_scores": """
        select i.subject, s.season_id, s.xp
          from public.season_scores s join public.identities i on i.profile_id = s.profile_id
         order by 1, 2""",
    "badges": """
        select a.badge_slug, i.subject, a.subject as badge_subject, a.level, a.source, l.idempotency_key,
               l.layer_slug, a.awarded_at = l.occurred_at as at_row,
               row_number() over (partition by a.profile_id order by a.id) as nth_of_member
          from public.badge_awards a
          join public.identities i on i.profile_id = a.profile_id
          left join public.xp_ledger l on l.id = a.ledger_id
         order by 1, 2""",
    "guild_members": """
        select m.guild_id, i.subject from public.discord_guild_members m
          join public.identities i on i.profile_id = m.profile_id order by 1, 2""",
    "notifications": "select kind, count(*) from public.notifications group by 1 order by 1",
    "points": "select count(*), coalesce(sum(amount), 0) from public.points_ledger",
    "feed": "select count(*), coalesce(sum(amount), 0) from public.activity_feed",
    "resyncs": "select guild_id from public.discord_role_resyncs order by 1",
    "counts": """
        select board, scope, level, bucket, members from public.leaderboard_counts order by 1, 2, 3, 4""",
}


async def state(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the imports write, by Discord id (ids, times and uuids left out), counts compacted."""
    async with db.pool.acquire() as conn:
        await conn.execute("select private.compact_leaderboard_counts()")
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in STATE.items()}


async def test_set_based_import_writes_what_the_per_member_import_wrote(
    db: Database, reference_db: Database
) -> None:
    """Batch by batch the answers (and errors) are identical, and afterwards so is every table the import
    touches: profiles, identities, ledger rows with request and receipt, layer and season totals, badges,
    leaderboard counts, server membership; no notification, no points."""
    for database in (db, reference_db):
        await setup(database)
    async with db.pool.acquire() as conn:
        notifications_before = await conn.fetchval("select count(*) from public.notifications")
    answers = []
    for step, (source, keep, members, dry_run) in enumerate(batches()):
        if step == 1:  # seasons count for imports from here on (the activity is configured alike on both)
            for database in (db, reference_db):
                async with database.pool.acquire() as conn:
                    await conn.execute(COUNTED)
                    await conn.execute(CLOSED)
        got = await run(db, source, keep, members, dry_run)
        expected = await run(reference_db, source, keep, members, dry_run)
        assert got == expected, f"batch {step}"
        answers.append(got)
    for members in MALFORMED:
        got = await run(db, "csv", "xp", members, False)
        assert got == await run(reference_db, "csv", "xp", members, False)
        assert got[0] == "error", members
    statuses = {m["status"] for a in answers for m in a["members"]}
    assert statuses == {"imported", "unchanged", "zero", "conflict", "rejected"}
    assert any(m["status"] == "imported" and not m["new_profile"] for m in answers[0]["members"])

    new, old = await state(db), await state(reference_db)
    for table in STATE:
        assert new[table] == old[table], table
    assert len(new["ledger"]) > 250 and len(new["badges"]) > 300
    assert all(row[-4:-1] == (True, True, True) for row in new["ledger"])
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from public.notifications") == notifications_before
        closed = "select count(*) from public.xp_ledger where (receipt ->> 'season_closed')::boolean"
        assert await conn.fetchval(closed) > 0
        counted = "select count(*) from public.xp_ledger where activity_slug = 'import' and season_id > 0"
        assert await conn.fetchval(counted) > 0


async def test_after_an_import_totals_are_ledger_sums_and_counts_are_a_rebuild(db: Database) -> None:
    """The invariants after the mixed batches: profile, layer and season totals are sums of the ledger,
    levels and tiers follow the totals, the leaderboard counts (compacted) equal a rebuild from scratch."""
    await setup(db)
    async with db.pool.acquire() as conn:
        await conn.execute(COUNTED)
    for batch in batches():
        answer = await run(db, *batch)
        assert set(answer) == {"source", "guild_id", "keep", "dry_run", "counts", "members"}
        assert sum(answer["counts"].values()) == len(batch[2]) == len(answer["members"])
        assert [m["user_id"] for m in answer["members"]] == [str(m["user_id"]) for m in batch[2]]
    async with db.pool.acquire() as conn:
        assert (
            await conn.fetchval(
                """select count(*) from public.profiles p
                where p.xp <> coalesce((select sum(l.amount) from public.xp_ledger l
                                         where l.profile_id = p.id), 0)
                   or p.level <> public.level_for_xp(p.xp)
                   or p.tier is distinct from public.tier_for_level(p.level)"""
            )
            == 0
        )
        assert (
            await conn.fetchval(
                """select count(*) from (
                 select l.profile_id, l.layer_slug, sum(l.amount) as xp from public.xp_ledger l group by 1, 2
               ) s full join public.profile_layers pl using (profile_id, layer_slug)
                where s.xp is distinct from pl.xp
                   or pl.status is distinct from public.layer_status_for(pl.layer_slug, pl.xp)"""
            )
            == 0
        )
        assert (
            await conn.fetchval(
                """select count(*) from (
                 select l.season_id, l.profile_id, sum(l.season_amount) as xp from public.xp_ledger l
                  where l.season_id is not null group by 1, 2 having sum(l.season_amount) <> 0
               ) s full join public.season_scores ss using (season_id, profile_id)
                where s.xp is distinct from ss.xp"""
            )
            == 0
        )
        assert (
            await conn.fetchval(
                "select count(*) from public.season_scores s"
                " join public.xp_ledger l using (season_id, profile_id) where l.activity_slug = 'import'"
            )
            > 50
        )
        await conn.execute("select private.compact_leaderboard_counts()")
        compacted = json.dumps([tuple(r) for r in await conn.fetch(STATE["counts"])])
        await conn.execute("select private.rebuild_leaderboard_counts()")
        assert json.dumps([tuple(r) for r in await conn.fetch(STATE["counts"])]) == compacted
