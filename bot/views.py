"""Interactive message parts: the leaderboard's paging buttons."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot import replies
from xpbase.models.leaderboards import OFFSET_LIMIT_ROWS, LeaderboardEntry

log = logging.getLogger(__name__)

PAGE_SIZE = 10
FetchPage = Callable[[int], Awaitable[list[LeaderboardEntry]]]


def leaderboard_embed(rows: list[LeaderboardEntry], *, title: str, page: int) -> discord.Embed:
    """One page of a leaderboard: rank, name, level and XP per line."""
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    if rows:
        embed.description = "\n".join(
            f"`#{row.rank:>3}` **{discord.utils.escape_markdown(row.display_name)}**"
            f" · level {row.level} · {row.xp:,} XP"
            for row in rows
        )
    else:
        embed.description = "Nobody here yet." if page == 1 else "No more members."
    embed.set_footer(text=f"Page {page}")
    return embed


class LeaderboardView(discord.ui.View):
    """◀ and ▶ under a leaderboard; only the member who asked for it can turn its pages.

    ``fetch(page)`` returns the rows of a page (1-based, PAGE_SIZE rows); a page with fewer rows is the
    last one.
    """

    def __init__(
        self,
        *,
        owner_id: int,
        title: str,
        fetch: FetchPage,
        rows: list[LeaderboardEntry],
        timeout: float = 180.0,
    ) -> None:
        super().__init__(timeout=timeout)
        self.owner_id = owner_id
        self.title = title
        self.fetch = fetch
        self.page = 1
        self.rows = rows
        self.at_end = len(rows) < PAGE_SIZE
        self.message: discord.Message | discord.WebhookMessage | None = None
        self._update_buttons()

    def embed(self) -> discord.Embed:
        """The current page as an embed."""
        return leaderboard_embed(self.rows, title=self.title, page=self.page)

    def _update_buttons(self) -> None:
        self.previous_page.disabled = self.page <= 1
        # public.leaderboard and guild_leaderboard answer pages within the first 10,000 rows of a board.
        self.next_page.disabled = self.at_end or (self.page + 1) * PAGE_SIZE > OFFSET_LIMIT_ROWS

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(
                "Run /leaderboard to page through your own copy.", ephemeral=True
            )
            return False
        return True

    async def show(self, interaction: discord.Interaction, page: int) -> None:
        """Fetch ``page`` and show it in place of the current one (the buttons' callback)."""
        await interaction.response.defer()
        rows = await self.fetch(page)
        if rows or page == 1:
            self.page, self.rows, self.at_end = page, rows, len(rows) < PAGE_SIZE
        else:
            self.at_end = True  # the last page was exactly full: stay on it, switch ▶ off
        self._update_buttons()
        await interaction.edit_original_response(embed=self.embed(), view=self)

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary)
    async def previous_page(self, interaction: discord.Interaction, _button: discord.ui.Button[Any]) -> None:
        await self.show(interaction, self.page - 1)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary)
    async def next_page(self, interaction: discord.Interaction, _button: discord.ui.Button[Any]) -> None:
        await self.show(interaction, self.page + 1)

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        log.warning("leaderboard paging failed: %s", error)
        await replies.reply_error(interaction, error)

    async def on_timeout(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True
        if self.message is not None:
            try:
                await self.message.edit(view=self)
            except discord.HTTPException:
                pass
