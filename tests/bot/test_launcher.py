"""Starting the bot: the launcher's refusals (no token, a token Discord rejects) and command sync."""

from __future__ import annotations

import discord
import pytest

from bot.bot import XPBot
from bot.launcher import main, run_bot
from tests.bot.discord_api import DiscordStandIn
from xpbase.rpc import RPC
from xpbase.settings import Settings
from xpbase.startup import EXIT_USAGE, StartupError


def test_xpbase_bot_without_a_token_exits_2() -> None:
    """No DISCORD_TOKEN: the launcher says how to get one (exit 2) without touching the database."""
    with pytest.raises(StartupError) as refused:
        main(Settings(_env_file=None, DISCORD_TOKEN=None), run_migrations=False)  # type: ignore[call-arg]
    assert refused.value.exit_code == EXIT_USAGE
    assert "DISCORD_TOKEN is not set" in refused.value.message


async def test_a_token_discord_rejects_fails_the_login(
    database_url: str, discord_api: DiscordStandIn
) -> None:
    """A token Discord answers 401 to raises LoginFailure (the CLI turns it into exit code 1)."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        DISCORD_TOKEN="wrong-token",
        DATABASE_URL=database_url,
        discord_api_url=discord.http.Route.BASE,  # the stand-in (the fixture points discord.py there)
    )
    with pytest.raises(discord.LoginFailure):
        await run_bot(settings)


async def test_commands_are_synced_to_the_test_guild_at_start(rpc: RPC, discord_api: DiscordStandIn) -> None:
    """With XPBASE_DISCORD_TEST_GUILD set, setup_hook copies the commands there and syncs them."""
    settings = Settings(_env_file=None, DISCORD_TOKEN="test-token", discord_test_guild=42)  # type: ignore[call-arg]
    client = XPBot(rpc=rpc, settings=settings)
    try:
        await client.login("test-token")
        [sync] = discord_api.find("PUT", r"applications/\d+/guilds/42/commands")
        names = sorted(command["name"] for command in sync.body)
        assert names == sorted(
            [
                "addpoints",
                "add_professional",
                "addxp",
                "botstats",
                "buy",
                "inventory",
                "checkin",
                "leaderboard",
                "levels",
                "link",
                "points",
                "match_review",
                "profile",
                "rank",
                "redeem",
                "redemptions",
                "removepoints",
                "removexp",
                "resetxp",
                "resume",
                "reviews",
                "resyncroles",
                "setlevel",
                "shop",
                "streak",
                "xp",
                "xpconfig",
                "claim",
                "claims",
                "events",
                "join",
                "pointvalues",
                "badges",
                "tools",
                "importxp",
                "rankcard",
                "suspend",
                "unsuspend",
                "warn",
            ]
        )
        admin = {c["name"]: c for c in sync.body}["addxp"]
        assert int(admin["default_member_permissions"]) == discord.Permissions(manage_guild=True).value
        suspend = {c["name"]: c for c in sync.body}["suspend"]
        assert int(suspend["default_member_permissions"]) == discord.Permissions(moderate_members=True).value
        assert discord_api.find("PUT", r"applications/\d+/commands") == []  # nothing global
    finally:
        await client.close()
