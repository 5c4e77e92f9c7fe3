"""Claims, point values and layer-gated events in Discord: /claim, /pointvalues, /events, /join, and for
admins /claims (the review queue with Approve and Reject buttons).

Each command calls one SQL function as service_role for the member's profile (supabase/sql/36_claims.sql,
40_events.sql); every rule and refusal is the database's, answered through the central error handler
(bot/replies.py). The queue's buttons are ``DynamicItem``s (custom id ``claim:<action>:<id>``), so they keep
working after a restart; Reject asks for the reason in a modal. Reviewers are members with Manage Server;
the database records them as the reviewer.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.replies import Refusal, defer, is_expected, reply, reply_error
from xpbase.models.claims import Claim, ClaimList, PointValues
from xpbase.models.events_layers import Event, EventList

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

QUEUE_SHOWN = 5


def _require_manager(interaction: discord.Interaction) -> None:
    if interaction.guild is None:
        raise app_commands.NoPrivateMessage()
    if not interaction.permissions.manage_guild:
        raise app_commands.MissingPermissions(["manage_guild"])


async def _review(interaction: discord.Interaction, claim_id: int, decision: str, reason: str | None) -> None:
    bot: XPBot = interaction.client  # type: ignore[assignment]
    claim = Claim.model_validate(
        await bot.rpc.call(
            "review_claim",
            claim_id=claim_id,
            decision=decision,
            reason=reason,
            profile_id=await bot.ensure_profile(interaction.user),
        )
    )
    granted = f" (+{claim.granted} XP)" if claim.granted else ""
    await reply(interaction, f"Claim #{claim.id} ({claim.activity_name}) is **{claim.status}**{granted}.")


class RejectModal(discord.ui.Modal, title="Reject a claim"):
    """The reason a member reads when their claim is rejected."""

    reason: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Reason", min_length=1, max_length=500)

    def __init__(self, claim_id: int) -> None:
        super().__init__()
        self.claim_id = claim_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            await defer(interaction, ephemeral=True)
            await _review(interaction, self.claim_id, "reject", str(self.reason.value))
        except Exception as error:
            if not is_expected(error):
                log.exception("claim rejection %s failed", self.claim_id, exc_info=error)
            await reply_error(interaction, error)


class ClaimButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"claim:(?P<action>approve|reject):(?P<id>\d+)",
):
    """Approve or reject one claim from the queue (Manage Server)."""

    def __init__(self, action: str, claim_id: int) -> None:
        style = discord.ButtonStyle.success if action == "approve" else discord.ButtonStyle.danger
        super().__init__(
            discord.ui.Button(label=action.capitalize(), style=style, custom_id=f"claim:{action}:{claim_id}")
        )
        self.action = action
        self.claim_id = claim_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> ClaimButton:
        return cls(match["action"], int(match["id"]))

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        try:
            _require_manager(interaction)
            if self.action == "reject":
                await interaction.response.send_modal(RejectModal(self.claim_id))
                return
            await defer(interaction, ephemeral=True)
            await _review(interaction, self.claim_id, "approve", None)
        except Exception as error:  # answered as the tree's central handler answers command errors
            if not is_expected(error):
                log.exception("claim button %s failed", self.custom_id, exc_info=error)
            await reply_error(interaction, error)


class Claims(commands.Cog):
    """/claim, /pointvalues, /events, /join; for admins /claims."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ClaimButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ClaimButton)

    async def _me(self, interaction: discord.Interaction) -> str:
        if interaction.user.bot:
            raise Refusal("Bots cannot claim or join.")
        return await self.bot.ensure_profile(interaction.user)

    @app_commands.command(name="claim", description="Claim XP for something you did; a reviewer checks it.")
    @app_commands.describe(
        activity="What you did (its code, as /pointvalues shows it)",
        note="What it was (the event's name, the resource...)",
        evidence="A link that shows it (https)",
    )
    async def claim(
        self,
        interaction: discord.Interaction,
        activity: app_commands.Range[str, 1, 64],
        note: app_commands.Range[str, 0, 1000] = "",
        evidence: app_commands.Range[str, 8, 500] | None = None,
    ) -> None:
        await defer(interaction, ephemeral=True)
        claim = Claim.model_validate(
            await self.bot.rpc.call(
                "submit_claim",
                activity=activity,
                note=note,
                evidence_url=evidence,
                occurred_at=None,
                profile_id=await self._me(interaction),
            )
        )
        if claim.status == "approved":
            await reply(interaction, f"**{claim.activity_name}**: +{claim.granted} XP.")
        else:
            await reply(interaction, f"Claim #{claim.id} ({claim.activity_name}) is waiting for a reviewer.")

    @app_commands.command(name="pointvalues", description="All the ways to earn XP.")
    async def pointvalues(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=True)
        values = PointValues.model_validate(await self.bot.rpc.call("point_values")).root
        embed = discord.Embed(title="Ways to earn XP", colour=discord.Colour.blurple())
        groups: dict[str, list[str]] = {}
        for v in values:
            xp = f"{v.min_xp}-{v.max_xp}" if v.min_xp is not None else f"{v.base_xp}"
            how = " · `/claim`" if v.claimable else ""
            groups.setdefault(v.category_name or "Other", []).append(
                f"**{v.name}** (`{v.slug}`): {xp} XP{how}"
            )
        for name, lines in list(groups.items())[:25]:
            embed.add_field(name=name, value="\n".join(lines)[:1024], inline=False)
        await reply(interaction, embed=embed)

    @app_commands.command(name="claims", description="The claims review queue (Manage Server).")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def claims(self, interaction: discord.Interaction) -> None:
        _require_manager(interaction)
        await defer(interaction, ephemeral=True)
        queue = ClaimList.model_validate(
            await self.bot.rpc.call(
                "claim_queue",
                status="pending",
                size=QUEUE_SHOWN,
                profile_id=await self.bot.ensure_profile(interaction.user),
            )
        ).root
        if not queue:
            await reply(interaction, "No claims are waiting.")
            return
        for entry in queue:
            who = discord.utils.escape_markdown(entry.display_name)
            note = discord.utils.escape_markdown(entry.note)[:1000]
            embed = discord.Embed(
                title=f"#{entry.id} {entry.activity_name}",
                description=f"{who} · {entry.occurred_at[:10]}\n{note}",
                colour=discord.Colour.orange(),
            )
            if entry.evidence_url:
                embed.add_field(name="Evidence", value=entry.evidence_url, inline=False)
            view = discord.ui.View(timeout=None)
            for action in ("approve", "reject"):
                view.add_item(ClaimButton(action, entry.id))
            await reply(interaction, embed=embed, view=view)

    @app_commands.command(
        name="events", description="Upcoming events and dungeons, and whether you may join."
    )
    @app_commands.describe(layer="Only one layer's (cyber lists dungeons)")
    async def events(
        self, interaction: discord.Interaction, layer: Literal["reality", "cyber"] | None = None
    ) -> None:
        await defer(interaction, ephemeral=True)
        listed = EventList.model_validate(
            await self.bot.rpc.call(
                "event_list", layer=layer, include_past=False, profile_id=await self._me(interaction)
            )
        ).root
        if not listed:
            await reply(interaction, "No upcoming events.")
            return
        embed = discord.Embed(title="Events", colour=discord.Colour.green())
        for e in listed[:25]:
            places = f"{e.confirmed}/{e.capacity}" if e.capacity else f"{e.confirmed}"
            mine = f" · you: {e.my_status}" if e.my_status else (f" · {e.gate}" if e.gate else " · `/join`")
            where = e.location or "online"
            embed.add_field(
                name=f"#{e.id} {e.title} ({e.kind}, {e.layer})",
                value=f"{e.starts_at[:16].replace('T', ' ')} UTC · {where} · {places} places{mine}",
                inline=False,
            )
        await reply(interaction, embed=embed)

    @app_commands.command(name="join", description="Sign up for an event or dungeon.")
    @app_commands.describe(event="The event's number, as /events shows it")
    async def join(self, interaction: discord.Interaction, event: app_commands.Range[int, 1]) -> None:
        await defer(interaction, ephemeral=True)
        joined = Event.model_validate(
            await self.bot.rpc.call("join_event", event_id=event, profile_id=await self._me(interaction))
        )
        if joined.my_status == "confirmed":
            await reply(interaction, f"You have a place at **{joined.title}**.")
        else:
            await reply(
                interaction, f"**{joined.title}** is full: you are number {joined.my_position} in line."
            )


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Claims(bot))
