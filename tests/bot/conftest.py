"""Bot fixtures: the Discord API stand-in, a logged-in bot on the per-test database, and a guild.

``bot`` is a real ``XPBot`` (cogs loaded by its setup_hook during ``login``,
which talks to the stand-in) calling the per-test database through
``xpbase.rpc.PostgresRPC`` as service_role. It never opens a gateway
connection: tests build gateway payloads with ``World`` and call the
listeners, the tree and the ticker directly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import discord
import pytest

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.bot.world import World
from xpbase.db import Database
from xpbase.rpc import RPC, PostgresRPC
from xpbase.settings import Settings


@pytest.fixture
async def discord_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordStandIn]:
    """Discord's REST API and CDN on loopback; discord.py is pointed at it."""
    standin = DiscordStandIn()
    base = await standin.start()
    monkeypatch.setattr(discord.http.Route, "BASE", f"{base}/api/v10")
    monkeypatch.setattr(discord.asset.Asset, "BASE", base)
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
def rpc(db: Database) -> RPC:
    """The default transport: asyncpg on the per-test database."""
    return PostgresRPC(db)


@pytest.fixture
async def bot(rpc: RPC, discord_api: DiscordStandIn) -> AsyncIterator[XPBot]:
    """A logged-in XPBot (no gateway) with every cog loaded."""
    client = XPBot(
        rpc=rpc, settings=Settings(_env_file=None, DISCORD_TOKEN="test-token", discord_test_guild=None)
    )
    await client.login("test-token")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def world(bot: XPBot) -> World:
    """The test guild, in the bot's cache."""
    return World(bot)


async def require_rpc(db: Database, name: str, owner: str) -> None:
    """Skip the calling test when ``public.<name>`` is not in the database yet (another issue adds it)."""
    async with db.pool.acquire() as conn:
        found = await conn.fetchval(
            "select exists (select 1 from pg_proc where pronamespace = 'public'::regnamespace"
            " and proname = $1)",
            name,
        )
    if not found:
        pytest.skip(f"public.{name} is missing: it comes with {owner}, not merged into this branch yet")
