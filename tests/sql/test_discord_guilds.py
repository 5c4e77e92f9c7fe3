"""The Discord bot's guild configuration and corrections: privileges, RLS, validation, the actor."""

from __future__ import annotations

import asyncpg
import pytest

from tests.helpers import acting_as, new_profile
from xpbase.db import Database
from xpbase.errors import DomainError

TABLES = ("discord_guilds", "discord_no_xp_targets", "discord_role_rewards")
SERVICE_ONLY = (
    "service_role_discord_guild('1')",
    "service_role_discord_set_announcements('1', 'off')",
    "service_role_discord_set_no_xp('1', 'channel', '2', true)",
    "service_role_discord_set_multiplier('1', 'role', '2', 2)",
    "service_role_discord_set_role_reward('1', '2', 5)",
    "service_role_discord_award('1', '2', 'x', 'message', 'k')",
    "service_role_discord_member('2')",
    "service_role_discord_seasons()",
    "service_role_discord_role_plan('1', '{2}')",
    "service_role_discord_notifications()",
    "service_role_discord_stats('1')",
    "service_role_admin_adjust_xp(gen_random_uuid(), gen_random_uuid(), 1, 'r', 'k')",
    "service_role_admin_set_level(gen_random_uuid(), gen_random_uuid(), 2, 'r', 'k')",
    "service_role_admin_reset_xp(gen_random_uuid(), gen_random_uuid(), 'r', 'k')",
)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_members_and_anon_cannot_read_or_write_guild_configuration(db: Database, role: str) -> None:
    """anon and authenticated have no privilege on the guild tables."""
    await db.rpc("service_role_discord_set_no_xp", guild_id="1", kind="channel", target_id="2", no_xp=True)
    pid = await new_profile(db)
    for table in TABLES:
        async with acting_as(db, role, pid) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"select * from public.{table}")
        async with acting_as(db, role, pid) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"delete from public.{table}")


async def test_rls_is_on_for_the_guild_tables(db: Database) -> None:
    """Every new table has row-level security enabled."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            "select relname, relrowsecurity from pg_class where relname = any($1::text[])", list(TABLES)
        )
    assert {r["relname"]: r["relrowsecurity"] for r in rows} == dict.fromkeys(TABLES, True)


async def test_service_role_reads_but_cannot_write_guild_tables_directly(db: Database) -> None:
    """service_role reads the configuration; writes go through the RPCs only."""
    async with acting_as(db, "service_role") as conn:
        assert await conn.fetch("select * from public.discord_guilds") == []
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("insert into public.discord_guilds (guild_id) values ('1')")


@pytest.mark.parametrize("call", SERVICE_ONLY)
@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_bot_rpcs_are_service_role_only(db: Database, role: str, call: str) -> None:
    """Members and anon cannot call the bot's RPCs."""
    pid = await new_profile(db)
    async with acting_as(db, role, pid) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval(f"select public.{call}")


async def test_level_guide_is_public(db: Database) -> None:
    """anon reads the level curve, tiers and layers through level_guide."""
    async with acting_as(db, "anon") as conn:
        guide = await conn.fetchval("select public.level_guide()")
    assert guide["max_level"] == 100 and len(guide["levels"]) == 100
    assert [t["name"] for t in guide["tiers"]] == ["Basic", "Member", "Advanced", "Elite", "Master"]
    assert [layer["slug"] for layer in guide["layers"]] == ["reality", "cyber"]


@pytest.mark.parametrize(
    ("function", "params"),
    [
        ("service_role_discord_set_announcements", {"guild_id": "1", "mode": "loud"}),
        ("service_role_discord_set_announcements", {"guild_id": "1", "mode": "channel"}),
        ("service_role_discord_set_announcements", {"guild_id": "guild", "mode": "off"}),
        (
            "service_role_discord_set_no_xp",
            {"guild_id": "1", "kind": "user", "target_id": "2", "no_xp": True},
        ),
        (
            "service_role_discord_set_no_xp",
            {"guild_id": "1", "kind": "role", "target_id": "-2", "no_xp": True},
        ),
        (
            "service_role_discord_set_multiplier",
            {"guild_id": "1", "kind": "role", "target_id": "2", "factor": 0},
        ),
        (
            "service_role_discord_set_multiplier",
            {"guild_id": "1", "kind": "role", "target_id": "2", "factor": 101},
        ),
        (
            "service_role_discord_set_role_reward",
            {"guild_id": "1", "role_id": "2", "min_level": 3, "tier": "elite"},
        ),
        ("service_role_discord_set_role_reward", {"guild_id": "1", "role_id": "2", "tier": "legend"}),
    ],
)
async def test_bad_configuration_is_refused_and_changes_nothing(
    db: Database, function: str, params: dict
) -> None:
    """Malformed ids, modes, kinds, factors and rewards raise XPBAD and write no row."""
    with pytest.raises(DomainError) as refused:
        await db.rpc(function, **params)
    assert refused.value.code == "invalid_argument"
    async with acting_as(db, "service_role") as conn:
        assert await conn.fetchval("select count(*) from public.discord_guilds") == 0


async def test_reward_level_must_be_on_the_curve(db: Database) -> None:
    """A level reward above the curve is XPLVL."""
    with pytest.raises(DomainError) as refused:
        await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="2", min_level=101)
    assert refused.value.code == "level_out_of_range"


async def test_configuration_round_trip(db: Database) -> None:
    """Each setter returns the whole configuration; setting again replaces, clearing removes."""
    await db.rpc("service_role_discord_set_announcements", guild_id="1", mode="channel", channel_id="10")
    await db.rpc("service_role_discord_set_no_xp", guild_id="1", kind="channel", target_id="11", no_xp=True)
    await db.rpc("service_role_discord_set_no_xp", guild_id="1", kind="role", target_id="12", no_xp=True)
    await db.rpc("service_role_discord_set_multiplier", guild_id="1", kind="role", target_id="13", factor=1.5)
    await db.rpc("service_role_discord_set_multiplier", guild_id="1", kind="role", target_id="13", factor=2)
    await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="14", min_level=5)
    config = await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="15", tier="member")
    assert config["announce_mode"] == "channel" and config["announce_channel_id"] == "10"
    assert config["no_xp_channels"] == ["11"] and config["no_xp_roles"] == ["12"]
    assert config["multipliers"] == [{"kind": "role", "target_id": "13", "factor": 2}]
    assert [(r["role_id"], r["level"]) for r in config["role_rewards"]] == [("14", 5), ("15", 11)]
    await db.rpc("service_role_discord_set_no_xp", guild_id="1", kind="channel", target_id="11", no_xp=False)
    await db.rpc(
        "service_role_discord_set_multiplier", guild_id="1", kind="role", target_id="13", factor=None
    )
    config = await db.rpc("service_role_discord_set_role_reward", guild_id="1", role_id="14")
    assert config["no_xp_channels"] == [] and config["multipliers"] == []
    assert [r["role_id"] for r in config["role_rewards"]] == ["15"]
    assert (await db.rpc("service_role_discord_guild", guild_id="2"))["announce_mode"] == "current"


async def test_admin_correction_on_behalf_records_the_actor(db: Database) -> None:
    """service_role_admin_adjust_xp writes the acting profile as the ledger's actor, then clears it."""
    admin = await new_profile(db, "Admin")
    member = await new_profile(db, "Member")
    receipt = await db.rpc(
        "service_role_admin_adjust_xp",
        actor_id=admin,
        profile_id=member,
        amount=300,
        reason="event prize",
        idempotency_key="adj-1",
    )
    assert receipt["granted"] == 300 and receipt["actor_id"] == str(admin)
    async with db.as_service() as conn:
        row = await conn.fetchrow(
            "select actor_id, actor_role, reason from public.xp_ledger where idempotency_key = 'adj-1'"
        )
        plain = await conn.fetchval(
            "select public.admin_adjust_xp(profile_id => $1, amount => 5, reason => 'r',"
            " idempotency_key => 'adj-2')",
            member,
        )
    assert (row["actor_id"], row["actor_role"], row["reason"]) == (admin, "service_role", "event prize")
    assert plain["actor_id"] is None


async def test_admin_correction_for_unknown_actor_is_refused(db: Database) -> None:
    """An actor that is not a profile is XPPRF and nothing is written."""
    member = await new_profile(db)
    with pytest.raises(DomainError) as refused:
        await db.rpc(
            "service_role_admin_reset_xp",
            actor_id="00000000-0000-0000-0000-000000000000",
            profile_id=member,
            reason="r",
            idempotency_key="k",
        )
    assert refused.value.code == "unknown_profile"
