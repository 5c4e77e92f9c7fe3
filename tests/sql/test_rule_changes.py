"""Rule changes replayed over the ledger (supabase/sql/47_rule_changes.sql, issue 16 item 5).

admin_rules_diff decides every award again under a proposed change to activity amounts, rates, caps,
multipliers or the level curve and answers who would gain or lose XP, levels, tiers and reward roles, keeping
nothing; admin_rules_apply writes the change and appends the corrections. The fixture's figures are worked
out by hand in the docstrings.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import acting_as, award, new_profile, wait_for_backend
from tests.sql.engine import cached_totals
from xpbase.db import Database, switch_role
from xpbase.errors import DomainError
from xpbase.models.rules import RuleChangeOutcome

GUILD = "424242"

# Message 15 -> 20 XP and its cooldown 60 -> 20 s; a short curve: level L needs 15 * (L - 1) XP (level 11,
# the first of tier "member", at 150 XP).
CHANGE: dict[str, Any] = {
    "activities": {"message": {"base_xp": 20, "cooldown_seconds": 20}},
    "level_curve": [{"level": level, "xp_required": 15 * (level - 1)} for level in range(1, 31)],
}


def days_ago(days: int) -> datetime:
    """Noon UTC `days` days ago: in the past, clear of midnight; beyond the late-award horizon if days > 2."""
    return (datetime.now(UTC) - timedelta(days=days)).replace(hour=12, minute=0, second=0, microsecond=0)


async def snapshot(db: Database) -> dict[str, Any]:
    """Everything a rule change may touch, to show a dry run or a refused change kept nothing."""
    queries = {
        "activities": "select slug, base_xp, min_xp, max_xp, cooldown_seconds, cap_group, xp_floor"
        " from public.activity_types order by slug",
        "rates": "select * from public.activity_rates order by activity_slug, effective_from",
        "caps": "select * from public.cap_groups order by slug",
        "multipliers": "select * from public.multipliers order by id",
        "curve": "select * from public.level_curve order by level",
        "ledger": "select count(*), coalesce(sum(amount), 0) from public.xp_ledger",
        "profiles": "select id, xp, level, tier, points from public.profiles order by id",
        "notifications": "select count(*) from public.notifications",
        "rule_changes": "select count(*) from public.rule_changes",
        "resyncs": "select count(*) from public.discord_role_resyncs",
    }
    return {name: [tuple(r) for r in await db.pool.fetch(sql)] for name, sql in queries.items()}


async def fixture(db: Database) -> dict[str, UUID]:
    """Ana: messages at t, t+30 s and t+90 s: 15 + 0 (cooldown) + 15 = 30 XP, level 1.
    Ben: one message (15) and an admin adjustment of +140: 155 XP, level 2 (150 on the default curve).
    Cy: one message, reversed: 0 XP. All three are members of a server with reward roles at level 5 and at
    tier "member"."""
    t = days_ago(5)
    ana, ben, cy = [await new_profile(db, name) for name in ("Ana", "Ben", "Cy")]
    for seconds in (0, 30, 90):
        await award(db, ana, "message", f"ana-{seconds}", occurred_at=t + timedelta(seconds=seconds))
    await award(db, ben, "message", "ben-0", occurred_at=t)
    await db.rpc("admin_adjust_xp", profile_id=ben, amount=140, reason="welcome", idempotency_key="ben-adj")
    cy_award = await award(db, cy, "message", "cy-0", occurred_at=t)
    await db.rpc("reverse_award", ledger_id=cy_award["ledger_id"], reason="spam")
    await db.pool.execute("insert into public.discord_guilds (guild_id) values ($1)", GUILD)
    await db.pool.execute(
        "insert into public.discord_role_rewards (guild_id, role_id, min_level, tier_slug)"
        " values ($1, '5005', 5, null), ($1, '1111', null, 'member')",
        GUILD,
    )
    for pid in (ana, ben, cy):
        await db.pool.execute(
            "insert into public.discord_guild_members (guild_id, profile_id) values ($1, $2)", GUILD, pid
        )
    return {"ana": ana, "ben": ben, "cy": cy}


def expected_members(people: dict[str, UUID]) -> list[dict[str, Any]]:
    """Under the change, Ana's three messages are 20 s apart or more: 20 + 20 + 20 = 60 XP (+30), level 5
    (60 = 15 * 4), gaining the level-5 role. Ben: 20 + 140 = 160 XP (+5), level 11 (150 <= 160 < 165), tier
    member, gaining both roles. Cy's reversed message stays at 0: no change."""
    return [
        {
            "profile_id": people["ana"], "display_name": "Ana", "xp_before": 30, "xp": 60, "xp_delta": 30,
            "level_before": 1, "level": 5, "tier_before": "basic", "tier": "basic", "awards_changed": 3,
            "reward_roles_gained": [{"guild_id": GUILD, "role_id": "5005"}], "reward_roles_lost": [],
        },
        {
            "profile_id": people["ben"], "display_name": "Ben", "xp_before": 155, "xp": 160, "xp_delta": 5,
            "level_before": 2, "level": 11, "tier_before": "basic", "tier": "member", "awards_changed": 1,
            "reward_roles_gained": [
                {"guild_id": GUILD, "role_id": "1111"}, {"guild_id": GUILD, "role_id": "5005"},
            ],
            "reward_roles_lost": [],
        },
    ]  # fmt: skip


async def test_diff_matches_the_hand_computed_fixture_and_keeps_nothing(db: Database) -> None:
    people = await fixture(db)
    before = await snapshot(db)
    outcome = RuleChangeOutcome.model_validate(await db.rpc("admin_rules_diff", change=CHANGE))
    assert outcome.model_dump(mode="python", exclude={"members"}) == {
        "dry_run": True, "rule_change_id": None, "awards_changed": 4, "members_changed": 2,
        "members_gaining": 2, "members_losing": 0, "xp_delta": 35, "levels_changed": 2, "tiers_changed": 1,
        "reward_roles_changed": 2,
    }  # fmt: skip
    assert [m.model_dump(mode="python") for m in outcome.members] == expected_members(people)
    assert await snapshot(db) == before


async def test_apply_appends_the_corrections_and_rederives_levels(db: Database) -> None:
    people = await fixture(db)
    outcome = RuleChangeOutcome.model_validate(
        await db.rpc("admin_rules_apply", change=CHANGE, reason="messages are worth more")
    )
    assert outcome.dry_run is False and outcome.rule_change_id is not None
    assert (outcome.awards_changed, outcome.xp_delta, outcome.levels_changed) == (4, 35, 2)
    assert [m.model_dump(mode="python") for m in outcome.members] == expected_members(people)

    # The cache follows the ledger: Ana 60 XP at level 5, Ben 160 at level 11 (tier member), Cy 0.
    for name, (xp, level, tier) in {
        "ana": (60, 5, "basic"),
        "ben": (160, 11, "member"),
        "cy": (0, 1, "basic"),
    }.items():
        cached = await cached_totals(db, people[name])
        ledger_xp = await db.pool.fetchval(
            "select coalesce(sum(amount), 0) from public.xp_ledger where profile_id = $1", people[name]
        )
        assert (cached["xp"], cached["level"], cached["tier"], ledger_xp) == (xp, level, tier, xp)
    # One correction per changed award, naming it, keyed by the rule change, with the reason; Ana's first
    # message keeps its grant's change (+5), its second goes 0 -> 20, the third 15 -> 20.
    rows = await db.pool.fetch(
        "select c.idempotency_key, c.amount, c.reason, c.receipt ->> 'wanted' as wanted,"
        "       u.idempotency_key as award"
        "  from public.xp_ledger c join public.xp_ledger u on u.id = c.corrects_id"
        " where c.request ->> 'fn' = 'rules' order by u.idempotency_key"
    )
    assert [(r["award"], r["amount"], r["wanted"], r["reason"]) for r in rows] == [
        ("ana-0", 5, "20", "messages are worth more"),
        ("ana-30", 20, "20", "messages are worth more"),
        ("ana-90", 5, "20", "messages are worth more"),
        ("ben-0", 5, "20", "messages are worth more"),
    ]
    assert all(r["idempotency_key"].endswith(f":{outcome.rule_change_id}") for r in rows)
    # Points follow the grant (1 point per XP by default): Ana earned 30 + 30.
    assert (await cached_totals(db, people["ana"]))["points"] == 60
    told = await db.pool.fetch(
        "select profile_id, data from public.notifications where kind = 'xp_recalculated' order by profile_id"
    )
    assert {r["profile_id"]: (r["data"]["xp_before"], r["data"]["total_xp"]) for r in told} == {
        people["ana"]: (30, 60),
        people["ben"]: (155, 160),
    }
    assert (
        await db.pool.fetchval("select count(*) from public.discord_role_resyncs where guild_id = $1", GUILD)
        == 1
    )
    recorded = await db.pool.fetchrow(
        "select * from public.rule_changes where id = $1", outcome.rule_change_id
    )
    assert (recorded["reason"], recorded["actor_role"], recorded["summary"]["xp_delta"]) == (
        "messages are worth more",
        "service_role",
        35,
    )
    # The rules as they are now change nothing more: replaying them is a fixed point.
    again = RuleChangeOutcome.model_validate(await db.rpc("admin_rules_diff", change={}))
    assert (again.awards_changed, again.members_changed, again.members) == (0, 0, [])


async def test_a_late_award_after_a_rule_change_decides_with_the_new_rules(db: Database) -> None:
    """m0 at t (15 XP) and m45 at t+45 s (held by m0's 60 s cooldown). Message goes to 20 XP: m0 +5, and m45
    keeps 0 but its wanted XP becomes 20 (a 0 XP row records it). A late message at t-50 s then holds m0 and
    frees m45, which is decided at the new 20 XP, not the 15 its receipt says."""
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    pid = await new_profile(db, "Late")
    await award(db, pid, "message", "m0", occurred_at=t)
    held = await award(db, pid, "message", "m45", occurred_at=t + timedelta(seconds=45))
    assert held["granted"] == 0
    await db.rpc("admin_rules_apply", change={"activities": {"message": {"base_xp": 20}}}, reason="more")
    late = await award(db, pid, "message", "m-50", occurred_at=t - timedelta(seconds=50))
    assert late["granted"] == 20
    nets = {
        r["idempotency_key"]: r["net"]
        for r in await db.pool.fetch(
            "select u.idempotency_key, (u.amount + coalesce((select sum(c.amount) from public.xp_ledger c"
            "  where c.corrects_id = u.id or c.reverses_id = u.id), 0))::int as net"
            " from public.xp_ledger u where u.profile_id = $1 and u.request ->> 'fn' = 'award_xp'",
            pid,
        )
    }
    assert nets == {"m-50": 20, "m0": 0, "m45": 20}
    assert (await cached_totals(db, pid))["xp"] == 40


@pytest.mark.parametrize(
    ("change", "max_members", "sqlstate"),
    [
        ([], 100, "XPBAD"),
        ({"badges": {}}, 100, "XPBAD"),
        ({"activities": {"nope": {"base_xp": 1}}}, 100, "XPACT"),
        ({"activities": {"message": {"colour": "red"}}}, 100, "XPBAD"),
        ({"activities": {"message": {"cooldown_seconds": -1}}}, 100, "XPBAD"),
        ({"activities": {"message": {"base_xp": "lots"}}}, 100, "XPBAD"),
        ({"activities": {"message": {"cap_group": "nope"}}}, 100, "XPBAD"),
        ({"cap_groups": {"discord": {"daily_cap": 0}}}, 100, "XPBAD"),
        ({"cap_groups": {"discord": {"time_zone": "Mars/Olympus"}}}, 100, "XPBAD"),
        ({"cap_groups": {"new": {"time_zone": "UTC"}}}, 100, "XPBAD"),
        ({"activity_rates": {"message": [{"base_xp": 3}]}}, 100, "XPBAD"),
        ({"activity_rates": {"message": [{"effective_from": "yesterday-ish", "base_xp": 3}]}}, 100, "XPBAD"),
        ({"multipliers": [{"kind": "event", "factor": 0}]}, 100, "XPBAD"),
        ({"multipliers": [{"id": 999999, "factor": 2}]}, 100, "XPBAD"),
        ({"multipliers": [{"delete": True}]}, 100, "XPBAD"),
        ({"level_curve": [{"level": 2, "xp_required": 10}]}, 100, "XPBAD"),
        ({"level_curve": [{"level": 1, "xp_required": 0}, {"level": 2, "xp_required": 0}]}, 100, "XPBAD"),
        ({"level_curve": [{"level": 1, "xp_required": 0}, {"level": 3, "xp_required": 10},
                          {"level": 2, "xp_required": 20}]}, 100, "XPBAD"),
        ({"activities": {"message": {"base_xp": 20}}, "level_curve": []}, 100, "XPBAD"),
        ({"activities": {"message": {"base_xp": 20}}}, 1001, "XPBAD"),
        ({"activities": {"message": {"base_xp": 20}}}, -1, "XPBAD"),
    ],
)  # fmt: skip
async def test_a_bad_change_is_refused_and_changes_nothing(
    db: Database, change: Any, max_members: int, sqlstate: str
) -> None:
    await fixture(db)
    before = await snapshot(db)
    for call in ("admin_rules_diff", "admin_rules_apply"):
        params: dict[str, Any] = {"change": change, "max_members": max_members}
        if call == "admin_rules_apply":
            params["reason"] = "try"
        with pytest.raises(DomainError) as raised:
            await db.rpc(call, **params)
        assert raised.value.error.sqlstate == sqlstate, raised.value
    assert await snapshot(db) == before


@pytest.mark.parametrize("reason", [None, "", " ", "x" * 501])
async def test_apply_needs_a_reason(db: Database, reason: str | None) -> None:
    before = await snapshot(db)
    with pytest.raises(DomainError) as raised:
        await db.rpc("admin_rules_apply", change={"activities": {"message": {"base_xp": 20}}}, reason=reason)
    assert raised.value.error.sqlstate == "XPBAD"
    assert await snapshot(db) == before


async def test_only_admins_and_the_backend_change_rules(db: Database) -> None:
    """A member and anon are refused (42501); an admin member may diff and apply, recorded as actor."""
    member = await new_profile(db, "Member")
    admin = await new_profile(db, "Admin")
    await db.rpc("service_role_grant_admin", profile_id=admin)
    change = {"activities": {"message": {"base_xp": 20}}}
    async with acting_as(db, "authenticated", member) as conn:
        with pytest.raises(Exception) as raised:
            await conn.fetchval("select public.admin_rules_diff($1::jsonb)", change)
        assert getattr(raised.value, "sqlstate", None) == "42501"
    async with acting_as(db, "anon") as conn:
        with pytest.raises(Exception) as raised:
            await conn.fetchval("select public.admin_rules_diff($1::jsonb)", change)
        assert getattr(raised.value, "sqlstate", None) == "42501"
    answer = await db.rpc(
        "admin_rules_apply",
        role="authenticated",
        claims={"role": "authenticated", "sub": str(admin)},
        change=change,
        reason="by an admin",
    )
    recorded = await db.pool.fetchrow(
        "select actor_id, actor_role from public.rule_changes where id = $1", answer["rule_change_id"]
    )
    assert (recorded["actor_id"], recorded["actor_role"]) == (admin, "admin")
    async with acting_as(db, "authenticated", member) as conn:
        assert await conn.fetchval("select count(*) from public.rule_changes") == 0
    async with acting_as(db, "authenticated", admin) as conn:
        assert await conn.fetchval("select count(*) from public.rule_changes") == 1


STREAM = st.lists(
    st.tuples(
        st.sampled_from(["message", "command", "voice_minute"]), st.integers(min_value=0, max_value=300)
    ),
    min_size=1,
    max_size=8,
)
RULES = st.fixed_dictionaries(
    {
        "message": st.fixed_dictionaries(
            {"base_xp": st.integers(1, 40), "cooldown_seconds": st.sampled_from([0, 30, 60, 120])}
        ),
        "command": st.fixed_dictionaries({"base_xp": st.integers(1, 20)}),
        "daily_cap": st.integers(10, 120),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stream=STREAM, rules=RULES)
async def test_apply_equals_deciding_under_the_new_rules_from_the_start(
    db: Database, stream: list[tuple[str, int]], rules: dict[str, Any]
) -> None:
    """A member's awards decided under the old rules and then corrected by a rule change end with the same net
    grant per award, and the same totals, as another member's same awards decided under the new rules."""
    t = days_ago(10)
    events = sorted((second, activity) for activity, second in stream)
    before = await new_profile(db, "Before")
    for i, (second, activity) in enumerate(events):
        await award(db, before, activity, f"{before}:{i}", occurred_at=t + timedelta(seconds=second))
    change = {
        "activities": {"message": rules["message"], "command": rules["command"]},
        "cap_groups": {"discord": {"daily_cap": rules["daily_cap"]}},
    }
    # The diff plays the corrections the apply writes: both answer the same.
    preview = RuleChangeOutcome.model_validate(
        await db.rpc("admin_rules_diff", change=change, max_members=1000)
    )
    applied = RuleChangeOutcome.model_validate(
        await db.rpc("admin_rules_apply", change=change, reason="property", max_members=1000)
    )
    assert preview.model_dump(exclude={"dry_run", "rule_change_id"}) == applied.model_dump(
        exclude={"dry_run", "rule_change_id"}
    )
    after = await new_profile(db, "After")
    for i, (second, activity) in enumerate(events):
        await award(db, after, activity, f"{after}:{i}", occurred_at=t + timedelta(seconds=second))

    async def nets(pid: UUID) -> list[int]:
        rows = await db.pool.fetch(
            "select (u.amount + coalesce((select sum(c.amount) from public.xp_ledger c"
            "  where c.corrects_id = u.id or c.reverses_id = u.id), 0))::int as net"
            " from public.xp_ledger u where u.profile_id = $1 and u.request ->> 'fn' = 'award_xp'"
            " order by u.occurred_at, u.idempotency_key",
            pid,
        )
        return [r["net"] for r in rows]

    assert await nets(before) == await nets(after)
    totals_before, totals_after = await cached_totals(db, before), await cached_totals(db, after)
    assert totals_before["xp"] == totals_after["xp"] == sum(await nets(after))
    assert totals_before["points"] == totals_after["points"]


async def test_rates_multipliers_and_caps_move_the_replay(db: Database) -> None:
    """Fee's messages at t, t+120 s and t+240 s earn 15 each (45). Under a rate of 30 XP from t+100 s, an
    event multiplier of 2 over [t+200 s, t+300 s) and a daily cap of 100, they earn 15 + 30 + min(60, 100 -
    45) = 100; with the cap group taken off the message activity instead, 15 + 30 + 60 = 105."""
    t = days_ago(6)
    fee = await new_profile(db, "Fee")
    for seconds in (0, 120, 240):
        await award(db, fee, "message", f"fee-{seconds}", occurred_at=t + timedelta(seconds=seconds))
    window = {
        "activity_rates": {
            "message": [{"effective_from": (t + timedelta(seconds=100)).isoformat(), "base_xp": 30}]
        },
        "multipliers": [
            {
                "kind": "event",
                "factor": 2,
                "starts_at": (t + timedelta(seconds=200)).isoformat(),
                "ends_at": (t + timedelta(seconds=300)).isoformat(),
            }
        ],
    }
    capped = RuleChangeOutcome.model_validate(
        await db.rpc("admin_rules_diff", change={**window, "cap_groups": {"discord": {"daily_cap": 100}}})
    )
    assert (capped.awards_changed, [(m.xp_before, m.xp) for m in capped.members]) == (2, [(45, 100)])
    exempt = RuleChangeOutcome.model_validate(
        await db.rpc("admin_rules_diff", change={**window, "activities": {"message": {"cap_group": None}}})
    )
    assert (exempt.awards_changed, [(m.xp_before, m.xp) for m in exempt.members]) == (2, [(45, 105)])
    # Removing the multiplier again by its id (after applying it) brings the third message back to 30.
    await db.rpc("admin_rules_apply", change=window, reason="event")
    added = await db.pool.fetchval("select max(id) from public.multipliers where kind = 'event'")
    undo = RuleChangeOutcome.model_validate(
        await db.rpc("admin_rules_diff", change={"multipliers": [{"id": added, "delete": True}]})
    )
    assert [(m.xp_before, m.xp) for m in undo.members] == [(105, 75)]


async def test_an_award_waits_for_an_apply_and_is_decided_under_the_new_rules(db: Database) -> None:
    """While an apply is open, a new award waits on the profiles lock; once the apply commits, the award is
    decided under the changed rules (20 XP, not 15), so no award slips between the replay and the commit."""
    pid = await new_profile(db, "Waiting")
    async with db.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await switch_role(conn, "service_role")
        await conn.fetchval(
            "select public.admin_rules_apply($1::jsonb, 'more')", {"activities": {"message": {"base_xp": 20}}}
        )
        waiting = asyncio.create_task(award(db, pid, "message", "waits"))
        await wait_for_backend(db, "wait_event_type = 'Lock' and query like '%award_xp%'")
        assert not waiting.done()
        await tx.commit()
    assert (await waiting)["granted"] == 20


async def test_a_correction_stops_at_zero_in_the_diff_as_in_the_apply(db: Database) -> None:
    """Gus: a message (15 XP) then an admin correction of -10: 5 XP. Message at 1 XP would take 14 back, but
    the layer holds 5: the correction stops at zero, in the diff's answer as in the apply's ledger."""
    gus = await new_profile(db, "Gus")
    await award(db, gus, "message", "gus-0", occurred_at=days_ago(4))
    await db.rpc("admin_adjust_xp", profile_id=gus, amount=-10, reason="spam", idempotency_key="gus-adj")
    change = {"activities": {"message": {"base_xp": 1}}}
    preview = RuleChangeOutcome.model_validate(await db.rpc("admin_rules_diff", change=change))
    assert [(m.xp_before, m.xp, m.xp_delta) for m in preview.members] == [(5, 0, -5)]
    applied = RuleChangeOutcome.model_validate(
        await db.rpc("admin_rules_apply", change=change, reason="less")
    )
    assert applied.model_dump(exclude={"dry_run", "rule_change_id"}) == preview.model_dump(
        exclude={"dry_run", "rule_change_id"}
    )
    assert (await cached_totals(db, gus))["xp"] == 0
    floored = await db.pool.fetchval(
        "select receipt ->> 'floored' from public.xp_ledger"
        " where request ->> 'fn' = 'rules' and profile_id = $1",
        gus,
    )
    assert floored == "true"
