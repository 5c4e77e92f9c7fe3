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

import discord
from rich.console import Console

from bot.bot import XPBot
from xpbase import embedded
from xpbase.db import resolve_url
from xpbase.migrate import MigrationError, migrate
from xpbase.rpc import connect_rpc
from xpbase.settings import Settings

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
    """``xpbase bot``: migrate (asyncpg transport only), then run the bot until SIGINT/SIGTERM. Exit code."""
    if not settings.discord_token:
        console.print(
            "[red]DISCORD_TOKEN is not set[/]: create a bot at https://discord.com/developers/applications"
            " and put its token in .env (see the README)"
        )
        return 2
    started = False
    try:
        if run_migrations and not (settings.supabase_url and settings.supabase_service_role_key):
            url, started = resolve_url(settings)
            try:
                asyncio.run(
                    migrate(url, settings.supabase_dir, progress=lambda line: console.print(f"  {line}"))
                )
            except MigrationError as exc:
                console.print(f"[red]migration failed:[/] {exc}")
                return 1
        console.print("[green]xpbase bot[/] starting; Ctrl-C stops")
        try:
            asyncio.run(_run_until_signalled(settings, sync_global))
        except discord.LoginFailure:
            console.print(
                "[red]Discord refused the token[/] (DISCORD_TOKEN): reset it in the developer portal"
            )
            return 1
        except discord.PrivilegedIntentsRequired:
            console.print(
                "[red]Discord refused the intents[/]: switch on Server Members and Message Content in "
                "the developer portal's Bot page"
            )
            return 1
    finally:
        if started:
            embedded.stop(settings.data_dir)
    return 0
