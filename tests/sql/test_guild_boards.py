"""Per-server boards (supabase/sql/93_guild_boards.sql): membership recorded as the bot sees members, the
board and rank among one server's members, hidden members left out."""

from __future__ import annotations

import pytest

from tests.helpers import acting_as, award
from tests.sql.test_roles import with_role
from xpbase.db import Database, member_claims
from xpbase.errors import DomainError


async def _member(db: Database, guild: str, user: str, name: str, xp: int) -> str:
    await db.rpc(
        "service_role_discord_see_members", guild_id=guild, members=[{"user_id": user, "display_name": name}]
    )
    pid = await db.rpc("ensure_profile", provider="discord", subject=user, display_name=name)
    if xp:
        await award(db, pid, "challenge_completed", f"c-{user}", amount=xp)
    return pid


async def test_server_board_and_rank_count_that_servers_members_only(db: Database) -> None:
    """Two servers share a member; each board lists its own members, ranks among them, totals stay global."""
    await _member(db, "1", "11", "Ada", 900)
    await _member(db, "1", "12", "Bo", 300)
    await _member(db, "2", "21", "Cy", 1000)
    await db.rpc(
        "service_role_discord_see_members", guild_id="2", members=[{"user_id": "12", "display_name": "Bo"}]
    )
    one = await db.rpc_rows("guild_leaderboard", role="anon", guild_id="1")
    two = await db.rpc_rows("guild_leaderboard", role="anon", guild_id="2")
    assert [(r["rank"], r["display_name"], r["xp"]) for r in one] == [(1, "Ada", 900), (2, "Bo", 300)]
    assert [(r["rank"], r["display_name"]) for r in two] == [(1, "Cy"), (2, "Bo")]
    rank = await db.rpc("service_role_discord_guild_rank", guild_id="2", user_id="12")
    assert (rank["member"], rank["rank"], rank["total"], rank["xp"]) == (True, 2, 2, 300)
    outsider = await db.rpc("service_role_discord_guild_rank", guild_id="2", user_id="11")
    assert (outsider["member"], outsider["rank"]) == (False, None)
    assert await db.rpc("service_role_discord_forget_member", guild_id="2", user_id="12") is True
    assert [r["display_name"] for r in await db.rpc_rows("guild_leaderboard", role="anon", guild_id="2")] == [
        "Cy"
    ]


async def test_passive_xp_records_membership_and_hidden_members_stay_off(db: Database) -> None:
    """An award through the bot records the member in that server; a member who hides leaves the server's
    board for everyone but themselves, and the membership row is hidden from others too."""
    receipt = await db.rpc(
        "service_role_discord_award",
        guild_id="5",
        user_id="51",
        display_name="Dee",
        activity="message",
        idempotency_key="m-51",
        channel_id=None,
        role_ids=[],
    )
    assert receipt["granted"] > 0
    board = await db.rpc_rows("guild_leaderboard", role="anon", guild_id="5")
    assert [r["display_name"] for r in board] == ["Dee"]
    pid = receipt["profile_id"]
    async with db.as_member(pid) as conn:
        await conn.execute("update public.profiles set leaderboard_visible = false where id = $1", pid)
    assert await db.rpc_rows("guild_leaderboard", role="anon", guild_id="5") == []
    mine = await db.rpc_rows(
        "guild_leaderboard", role="authenticated", claims=member_claims(pid), guild_id="5"
    )
    assert [r["display_name"] for r in mine] == ["Dee"]
    async with acting_as(db, "anon") as conn:
        assert await conn.fetchval("select count(*) from public.discord_guild_members") == 0


async def test_a_suspended_member_leaves_the_server_board_while_suspended(db: Database) -> None:
    """The server board and rank leave a suspended member out; lifting the suspension brings them back."""
    ada = await _member(db, "7", "71", "Ada", 900)
    await _member(db, "7", "72", "Bo", 300)
    await db.rpc(
        "service_role_moderate",
        actor_id=await with_role(db, "moderator", "Mod"),
        action="suspend",
        profile_id=ada,
        reason="Spam",
        until=None,
    )
    board = await db.rpc_rows("guild_leaderboard", role="anon", guild_id="7")
    assert [(r["rank"], r["display_name"]) for r in board] == [(1, "Bo")]
    bo = await db.rpc("service_role_discord_guild_rank", guild_id="7", user_id="72")
    assert (bo["rank"], bo["total"]) == (1, 1)
    assert (await db.rpc("service_role_discord_guild_rank", guild_id="7", user_id="71"))["rank"] is None
    await db.rpc(
        "service_role_moderate",
        actor_id=await with_role(db, "admin", "Boss"),
        action="unsuspend",
        profile_id=ada,
        reason="Ok",
        until=None,
    )
    board = await db.rpc_rows("guild_leaderboard", role="anon", guild_id="7")
    assert [(r["rank"], r["display_name"]) for r in board] == [(1, "Ada"), (2, "Bo")]


async def test_server_board_pages_reach_the_first_10000_rows(db: Database) -> None:
    """As the community boards: page * page_size past 10,000 is XPBAD (an offset costs the rows before it)."""
    await _member(db, "1", "11", "Ada", 900)
    last = await db.rpc_rows("guild_leaderboard", role="anon", guild_id="1", page_size=100, page=100)
    assert last == []
    with pytest.raises(DomainError) as refused:
        await db.rpc_rows("guild_leaderboard", role="anon", guild_id="1", page_size=100, page=101)
    assert refused.value.error.sqlstate == "XPBAD"
    assert "first 10000 rows" in refused.value.message
