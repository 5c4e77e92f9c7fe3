"""Member commands: rank card, leaderboards, levels, XP, check-in and streak, account linking, profile."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.rank_card import LayerStatus, RankCard, badge_marks, render_rank_card
from bot.replies import Refusal, defer, reply
from bot.views import PAGE_SIZE, LeaderboardView
from xpbase.errors import DomainError
from xpbase.models.badges import ProfileBadges
from xpbase.models.communities import GuildRank, RankCardChoice
from xpbase.models.leaderboards import LeaderboardEntry, LeaderboardRank
from xpbase.models.profiles import ProfileCard
from xpbase.models.seasons import SeasonInfo
from xpbase.models.sign_in import LinkedIdentity
from xpbase.models.streaks import CheckIn, StreakStatus

if TYPE_CHECKING:
    from bot.bot import XPBot

log = logging.getLogger(__name__)

AVATAR_SIZE = 256


def _timestamp(moment: dt.datetime, style: str = "R") -> str:
    """Discord's timestamp markup for a moment (shown in each reader's own time zone)."""
    return discord.utils.format_dt(moment, style=style)  # type: ignore[arg-type]


def _not_a_bot(user: discord.abc.User) -> None:
    if user.bot:
        raise Refusal("Bots do not earn XP.")


class Members(commands.Cog):
    """What every member can do: see their standing, leaderboards and the rules, check in, link accounts."""

    def __init__(self, bot: XPBot) -> None:
        self.bot = bot

    # /rank ---------------------------------------------------------------------------

    @app_commands.command(
        name="rank", description="A rank card: level, XP to the next level, tier, rank and layers."
    )
    @app_commands.describe(member="Whose card to show (yours if left out)")
    async def rank(self, interaction: discord.Interaction, member: discord.User | None = None) -> None:
        target = member or interaction.user
        _not_a_bot(target)
        await defer(interaction, ephemeral=False)
        # The viewer's profile too: a members-only profile is shown to members (SQL decides, XPHID otherwise).
        await self.bot.ensure_profile(interaction.user)
        profile = await self.bot.member_profile(target, viewer=interaction.user)
        rank: int | None
        if interaction.guild is not None:
            # In a server: the place among that server's members (XP itself is one total per community).
            place: GuildRank = await self.bot.rpc.call(
                "service_role_discord_guild_rank", guild_id=str(interaction.guild.id), user_id=str(target.id)
            )
            rank = place.rank
        else:
            standing: LeaderboardRank = await self.bot.rpc.call(
                "leaderboard_rank",
                profile_id=profile.profile_id,
                board="all_time",
                layer=None,
                season_id=None,
            )
            rank = standing.rank
        choice: RankCardChoice = await self.bot.rpc.call(
            "service_role_discord_rank_card", user_id=str(target.id)
        )
        try:
            held: ProfileBadges | None = await self.bot.rpc.call(
                "profile_badges", profile_id=profile.profile_id
            )
        except DomainError as exc:
            # profile_badges keeps a member hidden from boards unknown to all but themselves (SQL), and the
            # bot asks as the service: their own card then goes without badge marks.
            if exc.error.sqlstate != "XPPRF":
                raise
            held = None
        card = RankCard(
            name=target.display_name,
            level=profile.level,
            xp=profile.xp,
            level_xp=profile.level_xp,
            next_level_xp=profile.next_level_xp,
            tier=profile.tier,
            tier_name=profile.tier_name,
            rank=rank,
            layers=[LayerStatus(layer.name, layer.status_name, layer.xp) for layer in profile.layers],
            style=profile.rank_card_style,
            custom_accent=choice.accent,
            custom_background=choice.background,
            badges=badge_marks(held.counts.model_dump()) if held else (),
        )
        avatar = await self._avatar(target)
        png = await asyncio.to_thread(render_rank_card, card, avatar)
        await reply(interaction, file=discord.File(io.BytesIO(png), filename="rank.png"))

    @app_commands.command(
        name="rankcard", description="Choose your rank card's colours (Custom rank card unlock)."
    )
    @app_commands.describe(accent="The bar and level colour", background="The card's background")
    async def rankcard(
        self,
        interaction: discord.Interaction,
        accent: Literal["ember", "gold", "neon", "rose", "ocean", "violet"],
        background: Literal["slate", "night", "forest", "wine", "ocean"],
    ) -> None:
        await defer(interaction, ephemeral=True)
        await self.bot.ensure_profile(interaction.user)
        chosen: RankCardChoice = await self.bot.rpc.call(
            "service_role_discord_set_rank_card",
            user_id=str(interaction.user.id),
            accent=accent,
            background=background,
        )
        await reply(interaction, f"Your rank card is now {chosen.accent} on {chosen.background}: see /rank.")

    @staticmethod
    async def _avatar(user: discord.abc.User) -> bytes | None:
        try:
            return await user.display_avatar.replace(size=AVATAR_SIZE, static_format="png").read()
        except (discord.HTTPException, discord.DiscordException, ValueError) as exc:
            log.info("avatar of %s unavailable: %s", user.id, exc)
            return None

    # /leaderboard --------------------------------------------------------------------

    @app_commands.command(
        name="leaderboard",
        description="The top members: of this server (all time), in a layer, or in a season.",
    )
    @app_commands.describe(
        layer="Only XP earned in this layer", season="A season (its layer's monthly standings)"
    )
    async def leaderboard(
        self, interaction: discord.Interaction, layer: str | None = None, season: int | None = None
    ) -> None:
        guide = await self.bot.level_guide()
        layers = {entry.slug: entry.name for entry in guide.layers}
        if layer is not None and layer not in layers:
            raise Refusal(f"There is no layer called {layer!r}: pick one of {', '.join(layers)}.")
        await defer(interaction, ephemeral=False)
        title = "Leaderboard"
        if season is not None:
            found: list[SeasonInfo] = await self.bot.rpc.call("service_role_discord_seasons", layer=layer)
            seasons = {s.id: s for s in found}
            if season not in seasons:
                raise Refusal("That season does not exist.")
            board, layer, title = "season", seasons[season].layer, f"Season {seasons[season].name}"
        elif layer is not None:
            board, title = "layer", f"{layers[layer]} leaderboard"
        else:
            board = "all_time"
        guild_id = (
            str(interaction.guild.id) if interaction.guild is not None and board == "all_time" else None
        )
        if guild_id is not None and interaction.guild is not None:
            title = f"Leaderboard of {interaction.guild.name}"

        async def fetch(page: int) -> list[LeaderboardEntry]:
            if guild_id is not None:
                # In a server, the all-time board ranks that server's members.
                ranked: list[LeaderboardEntry] = await self.bot.rpc.call(
                    "guild_leaderboard", guild_id=guild_id, page_size=PAGE_SIZE, page=page
                )
                return ranked
            rows: list[LeaderboardEntry] = await self.bot.rpc.call(
                "leaderboard", board=board, layer=layer, season_id=season, page_size=PAGE_SIZE, page=page
            )
            return rows

        view = LeaderboardView(owner_id=interaction.user.id, title=title, fetch=fetch, rows=await fetch(1))
        await reply(interaction, embed=view.embed(), view=view)
        view.message = await interaction.original_response()

    @leaderboard.autocomplete("layer")
    async def _layer_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        guide = await self.bot.level_guide()
        return [
            app_commands.Choice(name=entry.name, value=entry.slug)
            for entry in guide.layers
            if current.lower() in entry.name.lower() or current.lower() in entry.slug
        ][:25]

    @leaderboard.autocomplete("season")
    async def _season_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[int]]:
        layer = getattr(interaction.namespace, "layer", None)
        seasons: list[SeasonInfo] = await self.bot.rpc.call(
            "service_role_discord_seasons", layer=layer, max_rows=25
        )
        return [
            app_commands.Choice(name=s.name, value=s.id)
            for s in seasons
            if str(current).lower() in s.name.lower()
        ][:25]

    # /levels ---------------------------------------------------------------------------

    @app_commands.command(name="levels", description="How levels and tiers work, and what each tier unlocks.")
    async def levels(self, interaction: discord.Interaction) -> None:
        await defer(interaction, ephemeral=False)
        guide = await self.bot.level_guide()
        curve = {entry.level: entry.xp_required for entry in guide.levels}
        embed = discord.Embed(
            title="Levels and tiers",
            colour=discord.Colour.blurple(),
            description=(
                f"Levels 1 to {guide.max_level}. "
                + " · ".join(f"level {lvl}: {curve[lvl]:,} XP" for lvl in (2, 5, 10, 25, 50) if lvl in curve)
            ),
        )
        for tier in guide.tiers:
            unlocks = ", ".join(u.name for u in tier.unlocks) or "nothing new"
            embed.add_field(
                name=f"{tier.name} · levels {tier.min_level}-{tier.max_level}",
                value=f"from {tier.xp_required:,} XP · unlocks {unlocks}",
                inline=False,
            )
        await reply(interaction, embed=embed)

    # /xp -------------------------------------------------------------------------------

    @app_commands.command(name="xp", description="Your XP: totals per layer and your latest XP entries.")
    async def xp(self, interaction: discord.Interaction) -> None:
        _not_a_bot(interaction.user)
        await defer(interaction, ephemeral=True)
        await self.bot.ensure_profile(interaction.user)
        profile = await self.bot.member_profile(interaction.user, recent=10)
        embed = discord.Embed(title="Your XP", colour=discord.Colour.blurple())
        to_next = (
            f"{profile.next_level_xp - profile.xp:,} XP to level {profile.level + 1}"
            if profile.next_level_xp is not None
            else "top level"
        )
        embed.description = (
            f"**{profile.xp:,} XP** · level {profile.level} ({to_next}) · {profile.tier_name} tier\n"
            f"{profile.points:,} points to spend"
        )
        for layer in profile.layers:
            embed.add_field(name=layer.name, value=f"{layer.xp:,} XP · {layer.status_name}")
        if profile.recent:
            embed.add_field(
                name="Latest",
                value="\n".join(
                    f"{entry.amount:+,} XP · {entry.activity_name}"
                    + (f" ({entry.reason})" if entry.reason else "")
                    + f" · {_timestamp(entry.occurred_at)}"
                    for entry in profile.recent
                ),
                inline=False,
            )
        await reply(interaction, embed=embed)

    # /checkin and /streak ----------------------------------------------------------------

    @app_commands.command(name="checkin", description="Check in for today: grows your streak and earns XP.")
    async def checkin(self, interaction: discord.Interaction) -> None:
        _not_a_bot(interaction.user)
        await defer(interaction, ephemeral=True)
        profile_id = await self.bot.ensure_profile(interaction.user)
        result: CheckIn = await self.bot.rpc.call("service_role_check_in", profile_id=profile_id)
        if not result.checked_in or result.xp is None:
            await reply(interaction, f"You already checked in today. Streak: **{result.streak}** days.")
            return
        lines = [f"Checked in: day **{result.streak}** of your streak, **+{result.granted:,} XP**."]
        if result.xp.level > result.xp.level_before:
            lines.append(f"Level up: you are now level **{result.xp.level}**.")
        if result.freezes_used:
            lines.append(f"A streak freeze kept your streak alive ({result.freezes_used} used).")
        if result.freeze_earned:
            lines.append(f"You earned a streak freeze ({result.freezes_held} held).")
        if result.milestone is not None:
            earned = " and earned a streak freeze" if result.milestone.freeze_earned else ""
            lines.append(f"Milestone: a {result.milestone.days}-day streak{earned}!")
        await reply(interaction, "\n".join(lines))

    @app_commands.command(name="streak", description="Your daily check-in streak and streak freezes.")
    async def streak(self, interaction: discord.Interaction) -> None:
        _not_a_bot(interaction.user)
        await defer(interaction, ephemeral=True)
        profile_id = await self.bot.ensure_profile(interaction.user)
        status: StreakStatus = await self.bot.rpc.call("service_role_streak_status", profile_id=profile_id)
        today = "done for today" if status.done_today else "not checked in yet today (/checkin)"
        await reply(
            interaction,
            f"Streak: **{status.current_streak}** days (longest {status.longest_streak}), {today}.\n"
            f"Streak freezes held: {status.freezes_held}. "
            f"Your day ({status.time_zone}) ends {discord.utils.format_dt(status.day_ends_at, style='R')}.",
        )

    # /link -----------------------------------------------------------------------------

    @app_commands.command(
        name="link", description="Link this Discord account to your account on the website."
    )
    @app_commands.describe(code="The one-time code the website showed you")
    async def link(self, interaction: discord.Interaction, code: app_commands.Range[str, 4, 64]) -> None:
        _not_a_bot(interaction.user)
        await defer(interaction, ephemeral=True)
        result: LinkedIdentity = await self.bot.rpc.call(
            "service_role_redeem_link_code",
            code=code.strip(),
            provider="discord",
            subject=str(interaction.user.id),
            display_name=interaction.user.display_name,
        )
        await reply(
            interaction, f"Linked: this Discord account now belongs to **{result.user.display_name}**."
        )

    # /profile --------------------------------------------------------------------------

    @app_commands.command(
        name="profile", description="A member's profile: level, tier, rank; yours adds points and accounts."
    )
    @app_commands.describe(member="Whose profile to show (yours if left out)")
    async def profile(self, interaction: discord.Interaction, member: discord.User | None = None) -> None:
        target = member or interaction.user
        _not_a_bot(target)
        await defer(interaction, ephemeral=True)
        # The viewer's profile too: a members-only profile is shown to members (SQL decides, XPHID otherwise).
        await self.bot.ensure_profile(interaction.user)
        if target.id != interaction.user.id:
            # Someone else's: profile_card run for the asker (service_role_discord_profile_card), the card a
            # member sees on the web. Never their bio, points, links, time zone or linked accounts.
            card: ProfileCard = await self.bot.rpc.call(
                "service_role_discord_profile_card",
                user_id=str(target.id),
                viewer_user_id=str(interaction.user.id),
            )
            await reply(interaction, embed=_card_embed(card, target))
            return
        # One's own: the private fields too.
        profile = await self.bot.member_profile(target)
        embed = discord.Embed(
            title=profile.display_name, description=profile.bio or None, colour=discord.Colour.blurple()
        )
        embed.set_thumbnail(url=target.display_avatar.url)
        embed.add_field(name="Level", value=f"{profile.level} ({profile.xp:,} XP)")
        embed.add_field(name="Tier", value=profile.tier_name)
        embed.add_field(name="Points", value=f"{profile.points:,}")
        embed.add_field(
            name="Layers",
            value="\n".join(f"{layer.name}: {layer.status_name}" for layer in profile.layers) or "none",
        )
        embed.add_field(name="Linked accounts", value=", ".join(profile.identities) or "none")
        embed.add_field(name="Member since", value=_timestamp(profile.created_at, "D"))
        if profile.social_links:
            embed.add_field(
                name="Links", value="\n".join(f"{k}: {v}" for k, v in sorted(profile.social_links.items()))
            )
        if profile.unlocks:
            embed.add_field(name="Unlocked", value=", ".join(u.name for u in profile.unlocks), inline=False)
        await reply(interaction, embed=embed)


def _card_embed(card: ProfileCard, user: discord.abc.User) -> discord.Embed:
    """Another member's /profile: the fields of their public card (level, tier, rank, layers, seasons)."""
    embed = discord.Embed(title=card.display_name, colour=discord.Colour.blurple())
    embed.set_thumbnail(url=user.display_avatar.url)
    embed.add_field(name="Level", value=f"{card.level} ({card.xp:,} XP)")
    embed.add_field(name="Tier", value=card.tier_name or "none")
    embed.add_field(
        name="Rank", value=f"#{card.rank:,} of {card.ranked_members:,}" if card.rank else "not ranked"
    )
    embed.add_field(
        name="Layers",
        value="\n".join(f"{layer.name}: {layer.status_name or '-'}" for layer in card.layers) or "none",
    )
    if card.seasons:
        embed.add_field(
            name="Seasons",
            value="\n".join(
                f"{season.name}: {season.xp:,} XP" + (f" (#{season.rank})" if season.rank else "")
                for season in card.seasons
            ),
            inline=False,
        )
    return embed


async def setup(bot: XPBot) -> None:
    await bot.add_cog(Members(bot))
