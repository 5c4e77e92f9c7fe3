"""The bot drains the outbox's Discord DMs (bot/cogs/deliveries.py) through the Discord stand-in."""

from __future__ import annotations

from typing import Any

from bot.bot import XPBot
from tests.bot.discord_api import DiscordStandIn
from tests.helpers import new_profile
from xpbase.db import Database

USER_ID = "300000000000000042"


async def test_a_notification_reaches_discord_once(
    bot: XPBot, discord_api: DiscordStandIn, db: Database
) -> None:
    """A tier_up notification becomes one DM to the member's Discord account; draining again sends nothing."""
    ada = await new_profile(db, "Ada", provider="discord", subject=USER_ID)
    async with db.pool.acquire() as conn:
        await conn.execute(
            "insert into public.notifications (profile_id, kind, title, body)"
            " values ($1, 'tier_up', 'Tier Member reached', 'Unlocked: rank cards')",
            ada,
        )
    cog: Any = bot.get_cog("DiscordDeliveries")  # loaded as an extension: its own module object
    assert cog is not None
    assert await cog.process() == 1
    assert await cog.process() == 0
    opened = discord_api.find("POST", "users/@me/channels")
    assert [str(r.body["recipient_id"]) for r in opened] == [USER_ID]
    dms = [r for r in discord_api.find("POST", r"channels/\d+/messages")]
    assert [r.body["content"] for r in dms] == ["**Tier Member reached**\nUnlocked: rank cards"]
    assert dms[0].body["nonce"].startswith("xpd")
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select state from private.deliveries") == "sent"


async def test_closed_dms_make_the_delivery_dead(
    bot: XPBot, discord_api: DiscordStandIn, db: Database
) -> None:
    """Discord refuses the DM (403, the member closed DMs): the delivery is dead, not retried."""
    ada = await new_profile(db, "Ada", provider="discord", subject=USER_ID)
    discord_api.refuse_dms = True
    async with db.pool.acquire() as conn:
        await conn.execute(
            "insert into public.notifications (profile_id, kind, title) values ($1, 'tier_up', 'T')", ada
        )
    cog: Any = bot.get_cog("DiscordDeliveries")  # loaded as an extension: its own module object
    assert cog is not None
    assert await cog.process() == 0
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow("select state, last_error from private.deliveries")
    assert row["state"] == "dead" and "403" in row["last_error"]
