"""Answering interactions: deferring, replying, and turning errors into friendly ephemeral replies.

Discord gives a command 3 seconds to answer; commands that call the database
``defer`` first and answer with a follow-up. An error answer is always
ephemeral (only the member who ran the command sees it): after a public defer
the "thinking..." message is deleted and the error sent as an ephemeral
follow-up.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from xpbase.errors import DomainError
from xpbase.rpc import RPCError, RPCUnavailable

log = logging.getLogger(__name__)


class Refusal(app_commands.AppCommandError):
    """A command refusing its input (a bot as the member, a season that does not exist...): the message is
    shown to the member as it is."""


# Engine errors whose database message says what exactly was wrong with the input.
_SHOW_DATABASE_MESSAGE = {"XPBAD", "XPAMT", "XPLVL", "23514", "22001", "XPEVG", "XPCLL"}


def friendly(error: BaseException) -> str:
    """The text a member sees for an error raised by a command (one or two short sentences)."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, Refusal):
        return str(error)
    if isinstance(error, DomainError):
        if error.error.sqlstate in _SHOW_DATABASE_MESSAGE:
            return f"{error.error.title} {error.message.rstrip('.')}."
        return error.error.title
    if isinstance(error, RPCUnavailable):
        return "The XP database cannot be reached right now. Please try again in a minute."
    if isinstance(error, RPCError):
        return "The XP database refused that. The bot's operators have been told."
    if isinstance(error, app_commands.MissingPermissions):
        return "You need the Manage Server permission for that."
    if isinstance(error, app_commands.BotMissingPermissions):
        missing = ", ".join(p.replace("_", " ").title() for p in error.missing_permissions)
        return f"I need the {missing} permission for that."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "That command works in a server, not in direct messages."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} seconds."
    if isinstance(error, app_commands.TransformerError | app_commands.CheckFailure):
        return str(error) or "That input is not valid."
    if isinstance(error, discord.Forbidden):
        return "Discord did not let me do that: check my role's permissions and position."
    return "Something went wrong on our side."


def is_expected(error: BaseException) -> bool:
    """Whether an error is a normal refusal (no stack trace in the log) rather than a bug or outage."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    return isinstance(
        error, Refusal | DomainError | app_commands.CheckFailure | app_commands.TransformerError
    )


async def defer(interaction: discord.Interaction, *, ephemeral: bool) -> None:
    """Acknowledge the interaction ("thinking...") and remember whether the answer will be public."""
    interaction.extras["public"] = not ephemeral
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=ephemeral, thinking=True)


async def reply(interaction: discord.Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer with ``content``/``embed``/``file``/``view``: the first answer, or the follow-up after a defer.

    ``ephemeral`` (default: the defer's choice, else False) only matters when nothing was sent yet.
    """
    if interaction.response.is_done():
        kwargs.setdefault("ephemeral", not interaction.extras.get("public", True))
        await interaction.followup.send(content, **kwargs)
    else:
        await interaction.response.send_message(content, **kwargs)


async def reply_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Answer ``error`` ephemerally, whatever state the interaction is in."""
    text = friendly(error)
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(text, ephemeral=True)
            return
        if interaction.extras.get("public"):
            # A public "thinking..." would show the error to everyone: remove it, answer privately.
            try:
                await interaction.delete_original_response()
            except discord.HTTPException:
                pass
        await interaction.followup.send(text, ephemeral=True)
    except discord.HTTPException:
        log.warning(
            "could not send the error reply for /%s", getattr(interaction.command, "qualified_name", "?")
        )
