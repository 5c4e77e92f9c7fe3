"""``xpbase demo``: a demo community in the running database, and ``xpbase demo --remove``.

What it loads (all reproducible from ``--seed``: the same seed gives the same names, activity and board):

- 16 members, profiles made through ``ensure_profile`` with the identity provider ``demo`` (subject
  ``<seed>:<n>``): that identity is the mark ``--remove`` finds them by. Their avatars are the initials the
  web pages draw (``avatar_url`` stays null: profiles accept only https URLs and the demo uses no image host).
  Their profiles are public (``profile_visibility``; members only is the default), so ``/u/<id>`` shows them.
- six weeks (``--days``, 1-120) of activity up to now through the one award path
  (``service_role_award_xp_batch``, i.e. ``private.award_xp``, so cooldowns, caps and seasons apply as for
  real members): messages, voice
  minutes, commands, event attendance and completed challenges, each member with their own rhythm;
- daily check-ins through ``service_role_check_in(profile, at)`` (streaks, freezes and milestones included);
- ``finalize_seasons()``: the monthly seasons that ended in those weeks are frozen, with results and rewards.

Removal respects the append-only ledger: nothing is deleted. ``--remove`` writes, in one transaction, an
``admin_reset_xp`` correction for each demo member (actor service_role, reason "xpbase demo --remove"),
hides them from every board (``leaderboard_visible = false``, so their page is a 404 and past season
results no longer list them), renames them "Removed demo member" and moves their identity to provider
``demo-removed`` (subject with the profile id appended), so that a later ``xpbase demo`` makes fresh members.
What stays: the ledger rows with their reversals, points (corrections never change points), streak rows,
and the places demo members took in finalized seasons (season_results keeps their rank; other members'
ranks there are not renumbered). Load the demo into a development database, not beside real members.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from xpbase.db import Database, switch_role

PROVIDER = "demo"
REMOVED_PROVIDER = "demo-removed"
MEMBERS = 16
DAYS = 42
FIRST = [
    "Ada",
    "Bilal",
    "Chen",
    "Dara",
    "Emeka",
    "Freya",
    "Gus",
    "Hana",
    "Ines",
    "Jonas",
    "Kemi",
    "Luca",
    "Mira",
    "Noor",
    "Oskar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tariq",
    "Uma",
    "Vera",
    "Wen",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Haddad",
    "Kowalski",
    "Silva",
    "Novak",
    "Adeyemi",
    "Berg",
    "Costa",
    "Duarte",
    "Ivanova",
    "Khan",
    "Larsen",
    "Mendes",
    "Nakamura",
    "Ortiz",
    "Petrov",
    "Reyes",
]


class DemoError(RuntimeError):
    """The demo cannot be loaded or removed as asked (already loaded, nothing to remove)."""


@dataclass(frozen=True)
class DemoReport:
    """What a load did: members made, awards sent and credited (XP), check-ins, seasons finalized."""

    members: int
    awards: int
    xp: int
    check_ins: int
    finalized_seasons: int
    top: list[tuple[str, UUID, int]]


def plan(seed: int, now: datetime, days: int = DAYS) -> list[dict]:
    """The members and their awards and check-ins over ``days`` days: a pure function of its arguments."""
    rng = random.Random(seed)
    first = rng.sample(FIRST, MEMBERS)
    last = [rng.choice(LAST) for _ in range(MEMBERS)]
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    members = []
    for n in range(MEMBERS):
        zeal = rng.betavariate(1.3, 2.2)  # a few very active members, a long tail
        habits = {"checkin": 0.25 + 0.7 * zeal, "active": 0.2 + 0.75 * zeal}
        awards, check_ins = [], []
        for day in range(days + 1):
            base = start + timedelta(days=day)
            if base > now:
                break
            if rng.random() < habits["checkin"]:
                check_ins.append(base + timedelta(hours=7, minutes=rng.randrange(0, 120)))
            if rng.random() > habits["active"]:
                continue
            hour = rng.randrange(9, 21)
            for m in range(rng.randrange(1, 3 + int(8 * zeal))):  # messages, at least a minute apart
                awards.append(("message", base + timedelta(hours=hour, minutes=2 * m), None))
            if rng.random() < 0.25:
                for m in range(rng.randrange(3, 12)):
                    awards.append(("voice_minute", base + timedelta(hours=hour + 1, minutes=m), None))
            if rng.random() < 0.3:
                awards.append(("command", base + timedelta(hours=hour, minutes=59), None))
            if rng.random() < 0.12 + 0.2 * zeal:
                awards.append(
                    ("event_attendance", base + timedelta(hours=19), rng.choice([50, 100, 150, 250]))
                )
            if rng.random() < 0.05 + 0.15 * zeal:
                awards.append(
                    ("challenge_completed", base + timedelta(hours=20), rng.choice([100, 200, 300, 500, 800]))
                )
        members.append(
            {
                "subject": f"{seed}:{n}",
                "name": f"{first[n]} {last[n]}",
                "awards": [a for a in awards if a[1] <= now],
                "check_ins": [c for c in check_ins if c <= now],
            }
        )
    return members


async def _demo_profiles(conn: asyncpg.Connection, provider: str) -> list[UUID]:
    return [
        r["profile_id"]
        for r in await conn.fetch(
            "select profile_id from public.identities where provider = $1 order by subject", provider
        )
    ]


async def load(db: Database, seed: int, now: datetime | None = None, days: int = DAYS) -> DemoReport:
    """Load the demo community for ``seed`` with ``days`` days of history.

    DemoError when a demo is loaded already (remove it first)."""
    now = now or datetime.now(UTC)
    async with db.pool.acquire() as conn:
        if await _demo_profiles(conn, PROVIDER):
            raise DemoError("a demo community is loaded already: `xpbase demo --remove` takes it out first")
    members = plan(seed, now, days)
    ids: list[UUID] = []
    items: list[dict] = []
    credited = check_ins = 0
    # One transaction: a failure anywhere leaves the database as it was.
    async with db.as_service() as conn:
        for member in members:
            pid = await conn.fetchval(
                "select public.ensure_profile($1, $2, $3)", PROVIDER, member["subject"], member["name"]
            )
            # Public cards, so that the web member pages (the public view) show them.
            await conn.execute("update public.profiles set profile_visibility = 'public' where id = $1", pid)
            ids.append(pid)
            for k, (activity, at, amount) in enumerate(member["awards"]):
                item = {
                    "profile_id": str(pid),
                    "activity": activity,
                    "idempotency_key": f"demo:{pid}:{k}",
                    "occurred_at": at.isoformat(),
                }
                if amount is not None:
                    item["amount"] = amount
                items.append(item)
        items.sort(key=lambda item: item["occurred_at"])
        for i in range(0, len(items), 2000):
            credited += await conn.fetchval(
                "select coalesce(sum(granted), 0)::bigint from public.service_role_award_xp_batch($1::jsonb)",
                items[i : i + 2000],
            )
        for pid, member in zip(ids, members, strict=True):
            for at in member["check_ins"]:
                await conn.execute("select public.service_role_check_in($1, $2)", pid, at)
                check_ins += 1
        before = await conn.fetchval("select count(*) from public.seasons where finalized_at is not null")
        await conn.execute("select public.finalize_seasons()")
        after = await conn.fetchval("select count(*) from public.seasons where finalized_at is not null")
        await conn.execute("select public.service_role_compact_leaderboard_counts()")
    async with db.as_anon() as conn:
        top = [
            (r["display_name"], r["profile_id"], r["xp"])
            for r in await conn.fetch(
                "select display_name, profile_id, xp from public.leaderboard('all_time', null, null, 5, 1)"
            )
        ]
    return DemoReport(len(ids), len(items), credited, check_ins, after - before, top)


async def remove(db: Database) -> int:
    """Take the demo community out (see the module docstring); how many members. DemoError if none."""
    async with db.pool.acquire() as conn, conn.transaction():
        ids = await _demo_profiles(conn, PROVIDER)
        if not ids:
            raise DemoError("no demo community is loaded")
        # Identities belong to the table owner's maintenance (no API role may rewrite them).
        await conn.execute(
            "update public.identities set provider = $2, subject = subject || ':' || profile_id::text"
            " where provider = $1",
            PROVIDER,
            REMOVED_PROVIDER,
        )
        await switch_role(conn, "service_role")
        for pid in ids:
            await conn.execute(
                "select public.admin_reset_xp($1, 'xpbase demo --remove', $2)", pid, f"demo-remove:{pid}"
            )
        await conn.execute(
            "update public.profiles set leaderboard_visible = false, display_name = 'Removed demo member',"
            " avatar_url = null where id = any($1::uuid[])",
            ids,
        )
    return len(ids)
