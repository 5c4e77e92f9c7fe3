"""The economy in Discord: the shop, buying and redeeming with points, inventory, points, and the admins'
redemption queue with approve/reject buttons and point corrections.

Each command calls one SQL function as service_role for the member's profile
(supabase/sql/32_points.sql, 55_store.sql, 56_redemptions.sql); every rule and
refusal is the database's, answered through the central error handler
(bot/replies.py). Idempotency keys are ``discord:<command>:<interaction id>``,
so a retried interaction changes nothing twice. The queue's buttons are
``DynamicItem``s (custom id ``redemption:<action>:<id>``): they keep working
after a restart.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import Refusal, defer, is_expected, reply, reply_error
from xpbase.models.economy import (
    Catalogue,
    Inventory,
    PointsChange,
    PointsStatement,
    Purchase,
    Redemptions,
    RedemptionUpdate,
)

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

QUEUE_SHOWN = 5
Reason = app_commands.Range[str, 1, 500]


def _price(item: Any) -> str:
    parts = []
    if item.price_points is not None:
        parts.append(f"{item.price_points:,} points")
    if item.price_paise is not None:
        parts.append(f"₹{item.price_paise / 100:,.2f}")
    return " or ".join(parts)


def _require_manager(interaction: discord.Interaction) -> None:
    if interaction.guild is None:
        raise app_commands.NoPrivateMessage()
    if not interaction.permissions.manage_guild:
        raise app_commands.MissingPermissions(["manage_guild"])


class RedemptionButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"redemption:(?P<action>approve|fulfil|reject):(?P<id>\d+)",
):
    """Approve, mark fulfilled or reject one redemption from the queue (Manage Server)."""

    STATUS: ClassVar[dict[str, str]] = {"approve": "approved", "fulfil": "fulfilled", "reject": "rejected"}
    STYLE: ClassVar[dict[str, discord.ButtonStyle]] = {
        "approve": discord.ButtonStyle.success,
        "fulfil": discord.ButtonStyle.primary,
        "reject": discord.ButtonStyle.danger,
    }

    def __init__(self, action: str, redemption_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=action.capitalize(),
                style=self.STYLE[action],
                custom_id=f"redemption:{action}:{redemption_id}",
            )
        )
        self.action = action
        self.redemption_id = redemption_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> RedemptionButton:
        return cls(match["action"], int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        try:
            _require_manager(interaction)
            await defer(interaction, ephemeral=True)
            bot: XPBot = interaction.client  # type: ignore[assignment]
            actor_id = await bot.ensure_profile(interaction.user)
            step = RedemptionUpdate.model_validate(
                await bot.rpc.call(
                    "service_role_update_redemption",
                    actor_id=actor_id,
                    redemption_id=self.redemption_id,
                    status=self.STATUS[self.action],
                    note=f"by {interaction.user.display_name} on Discord",
                )
            )
            refund = f"; {step.points_refunded:,} points refunded" if step.points_refunded else ""
            await reply(
                interaction,
                f"Redemption #{step.redemption_id} ({step.item}) is now **{step.status}**{refund}.",
            )
        except Exception as error:  # answered as the tree's central handler answers command errors
            if not is_expected(error):
                log.exception("redemption button %s failed", self.custom_id, exc_info=error)
            await reply_error(interaction, error)


class Economy(commands.Cog):
    """Points to spend: /shop, /buy, /redeem, /inventory, /points; for admins /redemptions, /addpoints and
    /removepoints."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(RedemptionButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(RedemptionButton)

    async def _me(self, interaction: discord.Interaction) -> str:
        if interaction.user.bot:
            raise Refusal("Bots have no points.")
        return await self.bot.ensure_profile(interaction.user)

    # Members ---------------------------------------------------------------------------

    @app_commands.command(name="shop", description="What the store sells, and what you bought.")
    async def shop(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        items = Catalogue.model_validate(
            await self.bot.rpc.call("store_catalogue", profile_id=await self._me(interaction))
        ).root
        embed = discord.Embed(title="Store", colour=discord.Colour.gold())
        for item in items[:25]:
            stock = "" if item.stock is None else f" · {item.stock} left"
            mine = f" · you have {item.bought}" if item.bought else ""
            how = "`/redeem`" if item.delivery != "none" else "`/buy`"
            embed.add_field(
                name=f"{item.name} ({item.slug})",
                value=f"{_price(item)}{stock}{mine}\n{item.description[:200]} {how}".strip(),
                inline=False,
            )
        if not items:
            embed.description = "Nothing on sale right now."
        await reply(interaction, embed=embed)

    async def _buy(
        self, interaction: discord.Interaction, item: str, delivery: dict[str, str] | None
    ) -> Purchase:
        await defer(interaction, ephemeral=True)
        return Purchase.model_validate(
            await self.bot.rpc.call(
                "service_role_buy_item",
                profile_id=await self._me(interaction),
                item=item,
                idempotency_key=f"discord:buy:{interaction.id}",
                expected_price=None,
                delivery=delivery,
            )
        )

    @app_commands.command(name="buy", description="Buy a store item with points.")
    @app_commands.describe(item="The item's code, as /shop shows it")
    async def buy(self, interaction: discord.Interaction, item: app_commands.Range[str, 1, 64]) -> None:
        bought = await self._buy(interaction, item, None)
        grants = bought.grants
        what = {
            "streak_freeze": f"You now hold {grants.get('freezes_held')} streak freezes.",
            "inventory": "It is in your /inventory.",
            "redemption": "An admin will review it.",
        }.get(str(grants.get("kind")), "")
        await reply(
            interaction,
            f"Bought **{bought.item_name}** for {bought.price_points:,} points; "
            f"{bought.points_balance:,} left. {what}",
        )

    @app_commands.command(name="redeem", description="Redeem points for something a person delivers.")
    @app_commands.describe(
        item="The item's code, as /shop shows it",
        email="Where to send it, for items delivered by email",
        address="Postal address, for items sent by post",
    )
    async def redeem(
        self,
        interaction: discord.Interaction,
        item: app_commands.Range[str, 1, 64],
        email: app_commands.Range[str, 3, 254] | None = None,
        address: app_commands.Range[str, 10, 1000] | None = None,
    ) -> None:
        delivery = {"email": email} if email else {"address": address} if address else None
        bought = await self._buy(interaction, item, delivery)
        await reply(
            interaction,
            f"Requested **{bought.item_name}** for {bought.price_points:,} points "
            f"(redemption #{bought.grants.get('redemption_id')}). You will hear from us at every step.",
        )

    @app_commands.command(name="inventory", description="What you own: items, tools, streak freezes.")
    async def inventory(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        held = Inventory.model_validate(
            await self.bot.rpc.call("inventory_of", profile_id=await self._me(interaction))
        )
        lines = [f"• {i.name} ×{i.quantity}" + (f" (unlocks {i.tool})" if i.tool else "") for i in held.items]
        lines.append(f"• Streak freezes held: {held.freezes_held}")
        if held.rank_card_style:
            lines.append(f"• Rank card style: {held.rank_card_style}")
        await reply(interaction, "\n".join(lines))

    @app_commands.command(name="points", description="Your points balance and recent changes.")
    async def points(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        statement = PointsStatement.model_validate(
            await self.bot.rpc.call("points_statement", profile_id=await self._me(interaction), size=10)
        )
        embed = discord.Embed(title=f"{statement.balance:,} points", colour=discord.Colour.gold())
        embed.description = (
            "\n".join(
                f"`{e.amount:+,}` {e.kind.replace('_', ' ')}" + (f" — {e.reason[:80]}" if e.reason else "")
                for e in statement.entries
            )
            or "No changes yet."
        )
        await reply(interaction, embed=embed)

    # Admins ----------------------------------------------------------------------------

    @app_commands.command(name="redemptions", description="The redemption queue (Manage Server).")
    @app_commands.describe(status="Which redemptions (pending by default)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def redemptions(
        self,
        interaction: discord.Interaction,
        status: Literal["pending", "approved", "fulfilled", "rejected", "cancelled"] = "pending",
    ) -> None:
        _require_manager(interaction)
        await defer(interaction, ephemeral=True)
        actor_id = await self.bot.ensure_profile(interaction.user)
        queue = Redemptions.model_validate(
            await self.bot.rpc.call(
                "service_role_redemption_queue",
                actor_id=actor_id,
                status=status,
                size=QUEUE_SHOWN,
                before_id=None,
            )
        ).root
        if not queue:
            await reply(interaction, f"No {status} redemptions.")
            return
        for entry in queue:
            embed = discord.Embed(
                title=f"#{entry.id} {entry.item_name} · {entry.status}",
                description=f"{discord.utils.escape_markdown(entry.display_name)} · {entry.points:,} points",
                colour=discord.Colour.orange(),
            )
            for key, value in entry.delivery.items():
                embed.add_field(name=key, value=value[:1000], inline=False)
            view = discord.ui.View(timeout=None)
            actions = {"pending": ("approve", "reject"), "approved": ("fulfil", "reject")}.get(
                entry.status, ()
            )
            for action in actions:
                view.add_item(RedemptionButton(action, entry.id))
            await reply(interaction, embed=embed, view=view)

    async def _adjust(
        self, interaction: discord.Interaction, member: discord.Member, amount: int, reason: str
    ) -> PointsChange:
        _require_manager(interaction)
        if member.bot:
            raise Refusal("Bots have no points.")
        await defer(interaction, ephemeral=True)
        return PointsChange.model_validate(
            await self.bot.rpc.call(
                "service_role_admin_adjust_points",
                actor_id=await self.bot.ensure_profile(interaction.user),
                profile_id=await self.bot.ensure_profile(member),
                amount=amount,
                reason=reason,
                idempotency_key=f"discord:admin:{interaction.id}",
            )
        )

    @app_commands.command(
        name="addpoints", description="Give a member points (recorded with you as the actor)."
    )
    @app_commands.describe(member="Who gets the points", amount="How many", reason="Why (kept in the ledger)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def addpoints(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        amount: app_commands.Range[int, 1, 100_000_000],
        reason: Reason,
    ) -> None:
        change = await self._adjust(interaction, member, amount, reason)
        await reply(
            interaction, f"Added {change.amount:,} points to {member.mention}: now {change.balance:,}."
        )

    @app_commands.command(name="removepoints", description="Take points from a member (never below zero).")
    @app_commands.describe(member="Whose points", amount="How many", reason="Why (kept in the ledger)")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def removepoints(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        amount: app_commands.Range[int, 1, 100_000_000],
        reason: Reason,
    ) -> None:
        change = await self._adjust(interaction, member, -amount, reason)
        floored = " (all they had)" if change.floored else ""
        await reply(
            interaction,
            f"Removed {-change.amount:,} points{floored} from {member.mention}: now {change.balance:,}.",
        )


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Economy(bot))
