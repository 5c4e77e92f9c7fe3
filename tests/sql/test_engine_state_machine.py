"""A hypothesis state machine over the engine (issue 18): random interleavings, invariants after every step.

Steps: awards (fixed and ranged activities, backdated up to 90 days), award batches in random order,
admin corrections up and down, check-ins at moving instants, season finalisation, visibility toggles
and time-zone changes. After every step, for the whole database:

- cached totals equal ledger sums (profile, layers, seasons; points equal the points ledger);
- level and tier follow the default curve;
- no negative XP, layer XP, season score or points balance;
- the leaderboard count histogram (counts plus pending changes) equals the one recomputed from the rows;
- every visible member's rank (all-time and layer boards) equals 1 + a recount of members above.

Examples are bounded (see SETTINGS) so it runs in well under a minute; each example adds three members to
one database (the invariants hold for everything in it, so examples need no reset).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.helpers import new_profile
from tests.sql.engine import cached_totals, expected_level, expected_tier, ledger_totals
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError

SETTINGS = settings(
    max_examples=5,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
"""5 examples x 10 steps, the same sequence every run (derandomize): about 50 steps with invariants."""

ZONES = ("UTC", "Etc/GMT+12", "Pacific/Kiritimati", "Asia/Kolkata", "America/New_York")
ACTIVITIES = (("xp_purchase", 1, 5000), ("event_attendance", 10, 500), ("challenge_completed", 10, 1000))

HISTOGRAM = """
select board, scope, level, bucket, sum(n)::bigint from (
  select board, scope, level, bucket, members as n from public.leaderboard_counts
  union all
  select board, scope, level, bucket, delta from public.leaderboard_count_deltas where level >= 0
  union all
  -- A member entering or leaving a board is one row at level -1 (bucket = XP), counted at every level.
  select board, scope, l.level, bucket >> (6 * l.level), delta
    from public.leaderboard_count_deltas d cross join generate_series(0, 7) as l (level) where d.level = -1
) x group by 1, 2, 3, 4 having sum(n) <> 0 order by 1, 2, 3, 4
"""
RECOMPUTED = """
select e.board, e.scope, l.level, e.xp >> (6 * l.level), count(*)::bigint
  from (
    select 'all_time' as board, '' as scope, p.xp from public.profiles p where p.leaderboard_visible
    union all
    select 'layer', pl.layer_slug, pl.xp
      from public.profile_layers pl join public.profiles p on p.id = pl.profile_id where p.leaderboard_visible
    union all
    select 'season', sc.season_id::text, sc.xp
      from public.season_scores sc join public.profiles p on p.id = sc.profile_id where p.leaderboard_visible
  ) e cross join generate_series(0, 7) as l (level)
 group by 1, 2, 3, 4 order by 1, 2, 3, 4
"""

STEPS = {"count": 0}


class Engine(RuleBasedStateMachine):
    """Three members per example; rules are the engine's entry points, invariants the ledger's truths."""

    db: Database
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def refusals_allowed(self, coro: Any) -> Any:
        """Run a step; an engine refusal (DomainError) is a legal outcome, anything else a failure."""
        try:
            return self.run(coro)
        except DomainError:
            return None

    @initialize()
    def members(self) -> None:
        self.pids: list[UUID] = [self.run(new_profile(self.db, f"M{i}")) for i in range(3)]
        self.now = datetime.now(UTC).replace(microsecond=0)

    @rule(
        who=st.integers(0, 2),
        activity=st.sampled_from(ACTIVITIES),
        amount=st.integers(-100, 6000),
        days_back=st.integers(0, 90),
    )
    def award(self, who: int, activity: tuple[str, int, int], amount: int, days_back: int) -> None:
        STEPS["count"] += 1
        slug, low, high = activity
        self.refusals_allowed(
            self.db.rpc(
                "award_xp",
                profile_id=self.pids[who],
                activity=slug,
                idempotency_key=f"sm:{uuid4()}",
                amount=min(max(amount, low), high),
                occurred_at=self.now - timedelta(days=days_back, hours=days_back % 7),
            )
        )

    @rule(order=st.permutations([0, 1, 2]), amount=st.integers(1, 900), days_back=st.integers(0, 60))
    def batch(self, order: list[int], amount: int, days_back: int) -> None:
        STEPS["count"] += 1
        awards = [
            {
                "profile_id": str(self.pids[i]),
                "activity": "xp_purchase",
                "idempotency_key": f"smb:{uuid4()}",
                "amount": amount + i,
                "occurred_at": (self.now - timedelta(days=days_back)).isoformat(),
            }
            for i in order
        ]
        self.refusals_allowed(self.db.rpc_rows("service_role_award_xp_batch", awards=json.dumps(awards)))

    @rule(who=st.integers(0, 2), amount=st.integers(-3000, 3000).filter(lambda n: n != 0))
    def correct(self, who: int, amount: int) -> None:
        STEPS["count"] += 1
        self.refusals_allowed(
            self.db.rpc(
                "admin_adjust_xp",
                profile_id=self.pids[who],
                amount=amount,
                reason="state machine",
                idempotency_key=f"sma:{uuid4()}",
            )
        )

    @rule(who=st.integers(0, 2), hours_back=st.integers(0, 24 * 20))
    def check_in(self, who: int, hours_back: int) -> None:
        STEPS["count"] += 1
        self.refusals_allowed(
            self.db.rpc(
                "service_role_check_in", profile_id=self.pids[who], at=self.now - timedelta(hours=hours_back)
            )
        )

    @rule()
    def finalize(self) -> None:
        STEPS["count"] += 1
        self.run(self.db.rpc("finalize_seasons"))

    @rule(who=st.integers(0, 2), visible=st.booleans())
    def visibility(self, who: int, visible: bool) -> None:
        STEPS["count"] += 1
        self.run(self.edit(who, {"leaderboard_visible": visible}))

    @rule(who=st.integers(0, 2), zone=st.sampled_from(ZONES))
    def time_zone(self, who: int, zone: str) -> None:
        STEPS["count"] += 1
        self.run(self.edit(who, {"time_zone": zone}))

    @precondition(lambda self: hasattr(self, "pids"))
    @rule()
    def compact(self) -> None:
        STEPS["count"] += 1
        self.run(self.db.rpc("service_role_compact_leaderboard_counts"))

    async def edit(self, who: int, changes: dict[str, Any]) -> None:
        await self.db.rpc(
            "update_my_profile", role="authenticated", claims=member_claims(self.pids[who]), changes=changes
        )

    # -- invariants ------------------------------------------------------------------------------------------

    @invariant()
    def totals_follow_the_ledger(self) -> None:
        if not hasattr(self, "pids"):
            return
        for pid in self.pids:
            cached = self.run(cached_totals(self.db, pid))
            derived = self.run(ledger_totals(self.db, pid))
            cached.pop("points")
            derived.pop("points")
            assert cached == derived
            assert cached["level"] == expected_level(cached["xp"])
            assert cached["tier"] == expected_tier(cached["level"])

    @invariant()
    def nothing_is_negative_and_points_follow_their_ledger(self) -> None:
        async def check() -> None:
            async with self.db.pool.acquire() as conn:
                assert (
                    await conn.fetchval("select count(*) from public.profiles where xp < 0 or points < 0")
                    == 0
                )
                assert await conn.fetchval("select count(*) from public.profile_layers where xp < 0") == 0
                assert await conn.fetchval("select count(*) from public.season_scores where xp < 0") == 0
                assert (
                    await conn.fetchval(
                        "select count(*) from public.profiles p where p.points <>"
                        " (select coalesce(sum(l.amount), 0) from public.points_ledger l"
                        "   where l.profile_id = p.id)"
                    )
                    == 0
                )

        self.run(check())

    @invariant()
    def counts_equal_the_recomputed_histogram(self) -> None:
        async def check() -> None:
            async with self.db.pool.acquire() as conn:
                kept = [tuple(r) for r in await conn.fetch(HISTOGRAM)]
                recomputed = [tuple(r) for r in await conn.fetch(RECOMPUTED)]
            assert kept == recomputed

        self.run(check())

    @invariant()
    def ranks_equal_a_recount(self) -> None:
        if not hasattr(self, "pids"):
            return

        async def check() -> None:
            async with self.db.pool.acquire() as conn:
                for pid in self.pids:
                    row = await conn.fetchrow(
                        "select p.leaderboard_visible as visible, p.xp,"
                        " (select count(*) from public.profiles o"
                        "   where o.leaderboard_visible and o.xp > p.xp)"
                        " as above,"
                        " (select pl.xp from public.profile_layers pl where pl.profile_id = p.id"
                        "   and pl.layer_slug = 'cyber') as cyber,"
                        " (select count(*) from public.profile_layers o"
                        "   join public.profiles op on op.id = o.profile_id"
                        "   where o.layer_slug = 'cyber' and op.leaderboard_visible and o.xp >"
                        "   (select pl.xp from public.profile_layers pl where pl.profile_id = p.id"
                        "     and pl.layer_slug = 'cyber')) as cyber_above"
                        " from public.profiles p where p.id = $1",
                        pid,
                    )
                    rank = await self.db.rpc("leaderboard_rank", role="anon", profile_id=pid)
                    layer = await self.db.rpc(
                        "leaderboard_rank", role="anon", profile_id=pid, board="layer", layer="cyber"
                    )
                    if row["visible"]:
                        assert rank["rank"] == 1 + row["above"]
                        if row["cyber"] is not None:
                            assert layer["rank"] == 1 + row["cyber_above"]
                    else:
                        assert rank["rank"] is None and layer["rank"] is None

        self.run(check())


def test_engine_invariants_hold_under_random_interleavings(database_url: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        Engine.loop = loop
        Engine.db = loop.run_until_complete(Database.connect(database_url, max_size=4))
        STEPS["count"] = 0
        run_state_machine_as_test(Engine, settings=SETTINGS)
        print(f"\nstate machine: {STEPS['count']} steps, invariants checked after each")
        assert STEPS["count"] > 30
    finally:
        loop.run_until_complete(Engine.db.close())
        loop.close()
