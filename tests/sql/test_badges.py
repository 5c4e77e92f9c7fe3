"""Badges as data (supabase/sql/33_badges.sql): each rule kind, subjects, once per subject, idempotency,
retroactive evaluation with progress, visibility of the reads, a batch's rows decided together as one at a
time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.helpers import acting_as, award, make_public, new_profile
from xpbase.db import SERVICE_CLAIMS, Database, member_claims, switch_role
from xpbase.errors import DomainError
from xpbase.models.badges import BadgeCatalogue, BadgeEvaluation, ProfileBadges

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

BADGE_COLUMNS = (
    "slug",
    "name",
    "level",
    "kind",
    "threshold",
    "activities",
    "weights",
    "subject_prefix",
    "window_seconds",
    "layer_slug",
    "status_slug",
    "tier_slug",
    "once_per",
    "position",
)


async def define(db: Database, slug: str, kind: str, threshold: int = 1, **rule: Any) -> None:
    """Insert an active badge as service_role (the way a community edits them)."""
    row: dict[str, Any] = {"slug": slug, "name": slug.title(), "kind": kind, "threshold": threshold, **rule}
    columns = [c for c in BADGE_COLUMNS if c in row]
    values = ", ".join(f"${i + 1}" + ("::jsonb" if c == "weights" else "") for i, c in enumerate(columns))
    async with db.as_service() as conn:
        await conn.execute(
            f"insert into public.badges ({', '.join(columns)}) values ({values})", *[row[c] for c in columns]
        )


async def held(db: Database, profile_id: UUID, slug: str | None = None) -> list[asyncpg.Record]:
    async with db.as_service() as conn:
        return await conn.fetch(
            "select badge_slug, subject, level, awarded_at, ledger_id, source from public.badge_awards"
            " where profile_id = $1 and ($2::text is null or badge_slug = $2) order by id",
            profile_id,
            slug,
        )


async def only_custom_badges(db: Database) -> None:
    """Switch the default badges off, so a test sees only the rules it defines."""
    async with db.as_service() as conn:
        await conn.execute("update public.badges set active = false")


async def test_award_subject_comes_from_the_context(db: Database) -> None:
    """context.subject lands on the ledger row; a subject that is not a short text is XPBAD."""
    pid = await new_profile(db)
    receipt = await award(db, pid, "challenge_completed", "s1", amount=10, context={"subject": "answer:7"})
    async with db.as_service() as conn:
        assert (
            await conn.fetchval("select subject from public.xp_ledger where id = $1", receipt["ledger_id"])
            == "answer:7"
        )
    for bad in ({"subject": 7}, {"subject": "x" * 201}, {"subject": ""}):
        with pytest.raises(DomainError) as exc:
            await award(db, pid, "challenge_completed", f"bad-{len(str(bad))}", amount=10, context=bad)
        assert exc.value.error.sqlstate == "XPBAD"


async def test_first_time_badge_is_awarded_once_with_a_notification(db: Database) -> None:
    """The default first_steps badge comes with the first credited award, once, and notifies the member."""
    pid = await new_profile(db)
    first = await award(db, pid, "challenge_completed", "f1", amount=10, occurred_at=T0)
    await award(db, pid, "challenge_completed", "f2", amount=10, occurred_at=T0 + timedelta(hours=1))
    await award(db, pid, "challenge_completed", "f1", amount=10, occurred_at=T0)  # replay of the same key
    rows = await held(db, pid, "first_steps")
    assert [(r["source"], r["ledger_id"], r["awarded_at"]) for r in rows] == [
        ("live", first["ledger_id"], T0)
    ]
    async with db.as_service() as conn:
        notes = await conn.fetch(
            "select title, data from public.notifications where profile_id = $1 and kind = 'badge_awarded'",
            pid,
        )
    assert len(notes) == 1 and notes[0]["title"] == "Badge earned: First steps"
    assert notes[0]["data"]["badge"] == "first_steps"


async def test_the_badge_filter_and_receipt_kinds_are_inlined_into_the_trigger(
    db: Database, database_url: str
) -> None:
    """private.badge_applies and private.badge_met_by_receipt run inside the badge trigger's statement
    (inlined), never as calls of their own: a call per (row, badge) pair cost about 7 us (tests/sql/
    test_catalog.py INLINED). The default badges (first_time, three levels) need no private.badge_met call; a
    badge that reads the ledger (activity_count) still makes one per candidate row. The awards still earn
    first_steps and the count badge."""
    await define(db, "two_challenges", "activity_count", 2, activities=["challenge_completed"])
    pid = await new_profile(db)
    conn = await asyncpg.connect(database_url)

    counts_sql = "select funcname, calls from pg_stat_xact_user_functions where schemaname = 'private'"

    async def calls_of(key: str) -> dict[str, int]:
        """The calls one award makes (a difference: the view may still hold the last transaction's counts)."""
        async with conn.transaction():
            await conn.execute("set local track_functions = 'all'")
            before = dict(await conn.fetch(counts_sql))
            await switch_role(conn, "service_role", SERVICE_CLAIMS)
            await conn.fetchval(
                "select public.award_xp(profile_id => $1, activity => 'challenge_completed',"
                " idempotency_key => $2, amount => 10)",
                pid,
                key,
            )
            await conn.execute("reset role")
            after = dict(await conn.fetch(counts_sql))
        return {name: n - before.get(name, 0) for name, n in after.items() if n != before.get(name, 0)}

    try:
        first = await calls_of("inline-1")
        second = await calls_of("inline-2")
    finally:
        await conn.close()
    for calls in (first, second):
        assert calls["tg_xp_ledger__badges"] == 1
        assert calls["badge_met"] == 1  # two_challenges only: the default badges are decided inline
        assert "badge_applies" not in calls and "badge_met_by_receipt" not in calls
    assert [r["badge_slug"] for r in await held(db, pid, "first_steps")] == ["first_steps"]
    assert [r["badge_slug"] for r in await held(db, pid, "two_challenges")] == ["two_challenges"]


@pytest.mark.parametrize(
    ("kind", "rule", "below", "reach"),
    [
        ("total_xp", {"threshold": 1000}, 990, 10),
        ("level", {"threshold": 4}, 1000, 50),  # level 4 starts at 1050 XP
        ("tier", {"tier_slug": "member"}, 10000, 500),  # level 11 (tier member) starts at 10,500 XP
        ("layer_status", {"layer_slug": "reality", "status_slug": "grounded"}, 2400, 100),
    ],
)
async def test_threshold_kinds(db: Database, kind: str, rule: dict[str, Any], below: int, reach: int) -> None:
    """A threshold badge comes with the award that crosses it, not before."""
    await only_custom_badges(db)
    await define(db, "goal", kind, **rule)
    pid = await new_profile(db)
    await award(
        db,
        pid,
        "xp_purchase" if kind != "layer_status" else "challenge_completed",
        "a",
        amount=min(below, 1000),
    )
    rest = below - min(below, 1000)
    n = 0
    while rest > 0:
        step = min(rest, 1000)
        await award(db, pid, "challenge_completed", f"r{n}", amount=step)
        rest -= step
        n += 1
    assert await held(db, pid) == []
    crossing = await award(db, pid, "challenge_completed", "cross", amount=reach)
    assert [r["ledger_id"] for r in await held(db, pid)] == [crossing["ledger_id"]]


async def test_activity_count_within_a_window(db: Database) -> None:
    """Three challenges within a day earn the badge; three spread over a week do not."""
    await only_custom_badges(db)
    await define(
        db, "busy_day", "activity_count", 3, activities=["challenge_completed"], window_seconds=86400
    )
    spread, busy = await new_profile(db, "Spread"), await new_profile(db, "Busy")
    for i in range(3):
        await award(
            db, spread, "challenge_completed", f"s{i}", amount=10, occurred_at=T0 + timedelta(days=3 * i)
        )
        await award(db, busy, "challenge_completed", f"b{i}", amount=10, occurred_at=T0 + timedelta(hours=i))
    await award(db, spread, "xp_purchase", "other", amount=10, occurred_at=T0 + timedelta(days=6, hours=1))
    assert await held(db, spread) == []
    assert [r["awarded_at"] for r in await held(db, busy)] == [T0 + timedelta(hours=2)]


async def test_streak_of_consecutive_local_days(db: Database) -> None:
    """Three consecutive days in the member's time zone earn a 3-day streak badge; a gap restarts it."""
    await only_custom_badges(db)
    await define(db, "three_days", "streak", 3, activities=["challenge_completed"])
    pid = await new_profile(db)
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set time_zone = 'Asia/Kolkata' where id = $1", pid)
    # Local days (UTC+5:30): Mar 2, Mar 3, (gap Mar 4), Mar 5, Mar 6 -- 23:00 UTC is already the next day.
    days = [T0, T0 + timedelta(days=1), T0 + timedelta(days=3), T0 + timedelta(days=3, hours=11)]
    for i, moment in enumerate(days):
        await award(db, pid, "challenge_completed", f"d{i}", amount=10, occurred_at=moment)
    assert await held(db, pid) == []
    last = await award(
        db, pid, "challenge_completed", "d5", amount=10, occurred_at=T0 + timedelta(days=4, hours=11)
    )
    assert [r["ledger_id"] for r in await held(db, pid)] == [last["ledger_id"]]


async def test_subject_sum_once_per_subject_with_weights(db: Database) -> None:
    """A weighted subject sum ("score 3") is earned once per subject: going down and up again adds nothing."""
    await only_custom_badges(db)
    await define(
        db,
        "nice_post",
        "subject_sum",
        3,
        activities=["challenge_completed", "xp_purchase"],
        weights={"challenge_completed": 1, "xp_purchase": -1},
        subject_prefix="post:",
        once_per="subject",
    )
    pid = await new_profile(db)

    async def vote(key: str, subject: str, up: bool = True) -> None:
        await award(
            db,
            pid,
            "challenge_completed" if up else "xp_purchase",
            key,
            amount=10,
            context={"subject": subject},
        )

    for i in range(2):
        await vote(f"a{i}", "post:1")
    await vote("a-down", "post:1", up=False)  # score 1
    await vote("a2", "post:1")
    assert await held(db, pid) == []  # score 2
    await vote("a3", "post:1")  # score 3
    await vote("a-down2", "post:1", up=False)
    await vote("a4", "post:1")  # 3 again
    for i in range(3):
        await vote(f"b{i}", "post:2")
        await vote(f"c{i}", "other:3")  # outside the prefix
    rows = await held(db, pid)
    assert [(r["subject"], r["level"]) for r in rows] == [("post:1", "bronze"), ("post:2", "bronze")]
    card = ProfileBadges.model_validate(await db.rpc("profile_badges", profile_id=pid))
    assert card.counts.bronze == 2
    assert [(b.slug, b.times, b.subjects) for b in card.badges] == [("nice_post", 2, ["post:2", "post:1"])]


async def test_subject_sum_of_xp_counts_held_back_awards_as_zero(db: Database) -> None:
    """Without weights a subject sums XP granted: an event total over two awards reaches 100."""
    await only_custom_badges(db)
    await define(db, "big_event", "subject_sum", 100, subject_prefix="event:")
    pid = await new_profile(db)
    await award(db, pid, "event_attendance", "e1", amount=60, context={"subject": "event:9"})
    await award(db, pid, "event_attendance", "e2", amount=30, context={"subject": "event:8"})
    assert await held(db, pid) == []
    await award(db, pid, "event_attendance", "e3", amount=40, context={"subject": "event:9"})
    assert [r["subject"] for r in await held(db, pid)] == [""]  # once per member: no subject kept


async def test_a_batch_earns_what_its_awards_earn_one_at_a_time(db: Database) -> None:
    """One batch (one ledger INSERT through private.award_set) grants the badges, in the order, that the same
    awards sent one at a time grant: per row in ledger id order, per badge in (position, slug) order; a
    once-per-member badge met by two rows of a member goes to the first; a row dated before an earlier row of
    the batch does not count for it (the ledger as that row found it)."""
    await only_custom_badges(db)
    await define(db, "z_early", "first_time", position=1)
    await define(db, "a_late", "first_time", position=5)
    await define(db, "two", "activity_count", 2, activities=["challenge_completed"], position=2)
    await define(db, "big", "total_xp", 25, position=3)

    def plan(a: UUID, b: UUID, c: UUID, tag: str) -> list[dict[str, Any]]:
        hour = timedelta(hours=1)
        items = [
            (a, "a1", T0),
            (b, "b1", T0),
            (a, "a2", T0 + hour),
            (b, "b2", T0 + hour),
            (a, "a3", T0 + 2 * hour),
            # c2 is dated three days before c1, beyond the late-award horizon: decided as of its arrival.
            (c, "c1", T0 + timedelta(days=3)),
            (c, "c2", T0),
        ]
        return [
            {
                "profile_id": str(pid),
                "activity": "challenge_completed",
                "idempotency_key": f"{tag}-{key}",
                "amount": 10,
                "occurred_at": at.isoformat(),
            }
            for pid, key, at in items
        ]

    async def outcome(members: list[UUID], tag: str) -> tuple[list[Any], list[Any]]:
        """(badge, member, award key) of each badge_awards row and each badge_awarded notification, in id
        order; the award key without the tag."""
        async with db.as_service() as conn:
            keys = {
                r["id"]: r["idempotency_key"].removeprefix(f"{tag}-")
                for r in await conn.fetch(
                    "select id, idempotency_key from public.xp_ledger where profile_id = any ($1::uuid[])",
                    members,
                )
            }
            awards = await conn.fetch(
                "select id, badge_slug, profile_id, ledger_id, awarded_at from public.badge_awards"
                " where profile_id = any ($1::uuid[]) order by id",
                members,
            )
            notes = await conn.fetch(
                "select profile_id, data from public.notifications"
                " where profile_id = any ($1::uuid[]) and kind = 'badge_awarded' order by id",
                members,
            )
        award_ids = [r["id"] for r in awards]
        return (
            [(r["badge_slug"], members.index(r["profile_id"]), keys[r["ledger_id"]]) for r in awards],
            [
                (
                    n["data"]["badge"],
                    members.index(n["profile_id"]),
                    keys[n["data"]["ledger_id"]],
                    award_ids.index(n["data"]["badge_award_id"]),
                )
                for n in notes
            ],
        )

    batch = [await new_profile(db, f"Batch{i}") for i in range(3)]
    async with db.as_service() as conn:
        receipts = await conn.fetch(
            "select * from public.service_role_award_xp_batch($1::jsonb)", plan(*batch, "batch")
        )
        # All seven ledger rows came from one statement (the set path), so one statement trigger decided them.
        assert (
            await conn.fetchval(
                "select count(distinct (xmin::text, cmin::text)) from public.xp_ledger"
                " where profile_id = any ($1::uuid[])",
                batch,
            )
            == 1
        )
    assert len(receipts) == 7
    single = [await new_profile(db, f"Single{i}") for i in range(3)]
    for item in plan(*single, "single"):
        await award(
            db,
            UUID(item["profile_id"]),
            item["activity"],
            item["idempotency_key"],
            amount=item["amount"],
            occurred_at=datetime.fromisoformat(item["occurred_at"]),
        )

    expected = [
        ("z_early", 0, "a1"),
        ("a_late", 0, "a1"),
        ("z_early", 1, "b1"),
        ("a_late", 1, "b1"),
        ("two", 0, "a2"),
        ("two", 1, "b2"),
        ("big", 0, "a3"),
        ("z_early", 2, "c1"),
        ("a_late", 2, "c1"),
    ]
    notes = [(*e, i) for i, e in enumerate(expected)]
    assert await outcome(batch, "batch") == (expected, notes)
    assert await outcome(single, "single") == (expected, notes)


async def test_season_placing(db: Database) -> None:
    """The default season_podium badge goes to the top 3 of a finalized season, once per season."""
    members = [await new_profile(db, f"P{i}") for i in range(4)]
    for i, pid in enumerate(members):
        await award(db, pid, "challenge_completed", f"p{i}", amount=100 + 10 * i, occurred_at=T0)
    await db.rpc("finalize_seasons", at=datetime(2026, 4, 3, tzinfo=UTC))
    await db.rpc("finalize_seasons", at=datetime(2026, 4, 3, tzinfo=UTC))
    got = {pid: [r["subject"] for r in await held(db, pid, "season_podium")] for pid in members}
    async with db.as_service() as conn:
        season = await conn.fetchval("select id from public.seasons where layer_slug = 'reality'")
    assert got == {members[0]: [], **{pid: [f"season:{season}"] for pid in members[1:]}}


async def test_retroactive_evaluation_with_progress_matches_live(db: Database) -> None:
    """A new badge is queued as a job; evaluated in steps it finds what the live trigger would have."""
    await only_custom_badges(db)
    members = [await new_profile(db, f"M{i}") for i in range(5)]
    for i, pid in enumerate(members):
        for j in range(i + 1):
            await award(
                db, pid, "challenge_completed", f"{i}-{j}", amount=10, occurred_at=T0 + timedelta(hours=j)
            )
    await define(db, "three_challenges", "activity_count", 3, activities=["challenge_completed"])
    async with db.pool.acquire() as conn:  # the queue's schema is the table owner's
        evaluation_id = await conn.fetchval(
            "select id from public.badge_evaluations where badge_slug = 'three_challenges' and revision = 1"
        )
        job = await conn.fetchrow(
            "select queue_name, task_name, args from procrastinate.procrastinate_jobs"
            " where queueing_lock = $1",
            f"badge_evaluation:{evaluation_id}",
        )
    assert (job["queue_name"], job["task_name"], job["args"]) == (
        "badges",
        "xpbase.evaluate_badge",
        {"evaluation_id": evaluation_id},
    )
    steps = []
    while True:
        step = BadgeEvaluation.model_validate(
            await db.rpc("service_role_evaluate_badge", evaluation_id=evaluation_id, max_profiles=2)
        )
        steps.append((step.status, step.profiles_done))
        if step.status == "done":
            break
    total = steps[-1][1]
    assert steps[0] == ("running", 2) and steps[-1][0] == "done" and step.profiles_total == total
    assert step.awarded == 3
    for i, pid in enumerate(members):
        rows = await held(db, pid)
        expected = [("retroactive", T0 + timedelta(hours=2))] if i >= 2 else []
        assert [(r["source"], r["awarded_at"]) for r in rows] == expected
    # Again: nothing more (idempotent), and the live trigger agrees for a newcomer.
    again = await db.rpc("service_role_evaluate_badge", evaluation_id=evaluation_id)
    assert again["awarded"] == 3 and again["status"] == "done"
    late = await new_profile(db, "Late")
    for j in range(3):
        await award(
            db, late, "challenge_completed", f"late-{j}", amount=10, occurred_at=T0 + timedelta(hours=j)
        )
    assert [(r["source"], r["awarded_at"]) for r in await held(db, late)] == [
        ("live", T0 + timedelta(hours=2))
    ]


async def test_changed_rule_is_evaluated_again_and_supersedes(db: Database) -> None:
    """Lowering a threshold bumps the revision and queues a new evaluation; the old one ends as done."""
    await only_custom_badges(db)
    pid = await new_profile(db)
    for j in range(2):
        await award(db, pid, "challenge_completed", f"c{j}", amount=10, occurred_at=T0 + timedelta(hours=j))
    await define(db, "pair", "activity_count", 3, activities=["challenge_completed"])
    async with db.as_service() as conn:
        await conn.execute("update public.badges set name = 'Pair!' where slug = 'pair'")  # not the rule
        await conn.execute("update public.badges set threshold = 2 where slug = 'pair'")
        evaluations = await conn.fetch(
            "select id, revision from public.badge_evaluations where badge_slug = 'pair' order by revision"
        )
    assert [e["revision"] for e in evaluations] == [1, 2]
    old = await db.rpc("service_role_evaluate_badge", evaluation_id=evaluations[0]["id"])
    assert (old["status"], old["awarded"]) == ("done", 0)
    new = await db.rpc("service_role_evaluate_badge", evaluation_id=evaluations[1]["id"])
    assert (new["status"], new["awarded"]) == ("done", 1)
    assert [r["awarded_at"] for r in await held(db, pid)] == [T0 + timedelta(hours=1)]
    with pytest.raises(DomainError) as exc:
        await db.rpc("service_role_evaluate_badge", evaluation_id=999999)
    assert exc.value.error.sqlstate == "XPBDG"


async def test_badge_rules_are_checked_by_the_table(db: Database) -> None:
    """A rule missing what its kind needs, or once per subject where there is none, is refused."""
    for kind, rule in (
        ("tier", {}),
        ("layer_status", {"layer_slug": "reality"}),
        ("level", {"once_per": "subject"}),
        ("level", {"activities": ["message"]}),
        ("total_xp", {"threshold": 0}),
    ):
        with pytest.raises(DomainError) as exc:
            await define(db, "broken", kind, **rule)
        assert exc.value.error.sqlstate == "23514"


async def test_reads_follow_profile_visibility(db: Database) -> None:
    """Anyone reads a public listed member's badges and the catalogue; a hidden member's are theirs (and the
    backend's) alone."""
    seen, hidden = await new_profile(db, "Seen"), await new_profile(db, "Hidden")
    await make_public(db, seen, hidden)
    for pid in (seen, hidden):
        await award(db, pid, "challenge_completed", f"v-{pid}", amount=10)
    async with db.as_member(hidden) as conn:
        await conn.execute("update public.profiles set leaderboard_visible = false where id = $1", hidden)
    anon = ProfileBadges.model_validate(await db.rpc("profile_badges", role="anon", profile_id=seen))
    assert [b.slug for b in anon.badges] == ["first_steps"]
    for role, claims in (("anon", None), ("authenticated", member_claims(seen))):
        with pytest.raises(DomainError) as exc:
            await db.rpc("profile_badges", role=role, claims=claims, profile_id=hidden)
        assert exc.value.error.sqlstate == "XPPRF"
    own = ProfileBadges.model_validate(
        await db.rpc("profile_badges", role="authenticated", claims=member_claims(hidden), profile_id=hidden)
    )
    assert own.counts.bronze == 1
    async with acting_as(db, "anon") as conn:
        assert (
            await conn.fetchval(
                "select count(*) from public.badge_awards where profile_id = any($1)", [seen, hidden]
            )
            == 1
        )
    catalogue = BadgeCatalogue.model_validate(await db.rpc("badge_catalogue", role="anon"))
    first = next(b for b in catalogue.badges if b.slug == "first_steps")
    assert first.holders == 1 and first.level == "bronze"
