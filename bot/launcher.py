"""Starting the bot: ``xpbase bot`` alone, or beside the service in ``xpbase serve`` / ``make run``.

The launcher creates the database interface (xpbase.rpc: PostgREST when
``SUPABASE_URL`` and ``SUPABASE_SERVICE_ROLE_KEY`` are set, otherwise asyncpg
on ``DATABASE_URL`` or the embedded Postgres) and passes it into the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import aiohttp
import discord
from rich.console import Console

from bot.bot import XPBot
from xpbase.rpc import connect_rpc
from xpbase.settings import Settings
from xpbase.startup import EXIT_DISCORD, EXIT_USAGE, StartupError, database_ready

log = logging.getLogger(__name__)
console = Console(stderr=True, highlight=False)


async def run_bot(settings: Settings, *, sync_global: bool = False) -> None:
    """Run the bot until it is cancelled or Discord closes the session.

    ``sync_global``: publish the slash commands to every guild after logging in (needed once after
    installing or changing commands; Discord takes up to an hour to show them everywhere). Raises
    ``discord.LoginFailure`` for a bad token.
    """
    if not settings.discord_token:
        raise ValueError("DISCORD_TOKEN is not set")
    discord.http.Route.BASE = settings.discord_api_url.rstrip("/")
    rpc = await connect_rpc(settings)
    try:
        async with XPBot(rpc=rpc, settings=settings) as bot:
            if sync_global:
                await bot.login(settings.discord_token)
                console.print(f"published {await bot.sync_global_commands()} slash commands globally")
                await bot.connect()
            else:
                await bot.start(settings.discord_token)
    finally:
        await rpc.close()


async def _run_until_signalled(settings: Settings, sync_global: bool) -> None:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        if task is not None:
            loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run_bot(settings, sync_global=sync_global)


def main(settings: Settings, *, sync_global: bool = False, run_migrations: bool = True) -> int:
    """``xpbase bot``: find or start the database and migrate (asyncpg transport only; xpbase.startup), then
    run the bot until SIGINT/SIGTERM. Returns 0 after a clean stop.

    Raises xpbase.startup.StartupError (one line and an exit code, printed by the CLI): 2 without
    DISCORD_TOKEN, 5 when the database is unreachable, 6 when Discord is unreachable or refuses the token or
    the privileged intents.
    """
    if not settings.discord_token:
        raise StartupError(
            "DISCORD_TOKEN is not set: create a bot at https://discord.com/developers/applications"
            " and put its token in .env (see the README)",
            EXIT_USAGE,
        )
    via_postgrest = bool(settings.supabase_url and settings.supabase_service_role_key)
    with database_ready(
        settings, run_migrations=run_migrations and not via_postgrest, say=console.print
    ) as ready:
        if not via_postgrest:
            settings = settings.model_copy(update={"database_url": ready.url})
        console.print("[green]xpbase bot[/] starting; Ctrl-C stops")
        try:
            asyncio.run(_run_until_signalled(settings, sync_global))
        except BaseException as exc:
            error = discord_error(exc, settings)
            if error is None:
                raise
            raise error from None
    return 0


def discord_error(exc: BaseException, settings: Settings) -> StartupError | None:
    """The one line for Discord refusing or not answering the bot (exit 6); None for other errors."""
    if isinstance(exc, discord.LoginFailure):
        return StartupError(
            "Discord refused the token (DISCORD_TOKEN): reset it on the Bot page of the developer portal",
            EXIT_DISCORD,
        )
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return StartupError(
            "Discord refused the intents: switch on Server Members and Message Content on the developer "
            "portal's Bot page",
            EXIT_DISCORD,
        )
    if isinstance(exc, aiohttp.ClientConnectionError | discord.GatewayNotFound | TimeoutError) or (
        isinstance(exc, discord.DiscordServerError)
    ):
        return StartupError(
            f"cannot reach Discord at {settings.discord_api_url}: {exc.__class__.__name__}"
            f"{': ' + str(exc) if str(exc) else ''}; check the network (and XPBASE_DISCORD_API_URL)",
            EXIT_DISCORD,
        )
    return None
