"""The ``xpbase`` command line.

xpbase db start|stop|status|url   the embedded Postgres (when DATABASE_URL is unset)
xpbase migrate                    apply migrations, functions.sql and seed.sql
xpbase serve                      migrate, then serve the HTTP API with Hypercorn (and the bot
                                  when DISCORD_TOKEN is set)
xpbase bot [--sync-global]        migrate, then run the Discord bot alone
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from rich.console import Console

from xpbase import embedded
from xpbase.db import resolve_url
from xpbase.migrate import MigrationError, migrate
from xpbase.settings import Settings, get_settings

console = Console(stderr=True, highlight=False)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url and args.action in ("start", "stop"):
        console.print("[yellow]DATABASE_URL is set: xpbase uses that server, not the embedded one.[/]")
    if args.action == "start":
        url, started = embedded.start(settings.data_dir)
        console.print(
            f"{'started' if started else 'already running'}: {embedded.pgdata_path(settings.data_dir)}"
        )
        print(url)
    elif args.action == "stop":
        stopped = embedded.stop(settings.data_dir)
        console.print("stopped" if stopped else "not running")
    elif args.action == "status":
        status = embedded.status(settings.data_dir)
        if status.running:
            console.print(f"running (pid {status.pid}) in {status.pgdata}")
            print(status.url)
        else:
            console.print(f"not running ({status.pgdata})")
            return 3
    elif args.action == "url":
        if settings.database_url:
            print(settings.database_url)
            return 0
        status = embedded.status(settings.data_dir)
        if not status.running:
            console.print("[red]the embedded server is not running: run `xpbase db start`[/]")
            return 3
        print(status.url)
    return 0


def _migrate(settings: Settings) -> int:
    url, _ = resolve_url(settings)
    try:
        report = asyncio.run(
            migrate(url, settings.supabase_dir, progress=lambda line: console.print(f"  {line}"))
        )
    except MigrationError as exc:
        console.print(f"[red]migration failed:[/] {exc}")
        return 1
    if report.applied:
        console.print(
            f"[green]applied {len(report.applied)} migration(s)[/], schema version {report.schema_version}"
        )
    else:
        console.print(f"[green]up to date[/]: {report.already_applied} migration(s) already applied")
    return 0


def _serve(settings: Settings) -> int:
    from service.server import serve

    return serve(settings)


def _bot(args: argparse.Namespace, settings: Settings) -> int:
    from bot.launcher import main as run_bot

    return run_bot(settings, sync_global=args.sync_global, run_migrations=not args.no_migrate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xpbase", description="xpbase: XP engine, service and tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="the embedded Postgres server")
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    sub.add_parser("migrate", help="apply migrations, functions.sql and seed.sql (idempotent)")
    sub.add_parser("serve", help="migrate, then serve the HTTP API (Hypercorn) on XPBASE_HOST:XPBASE_PORT")
    bot = sub.add_parser("bot", help="migrate, then run the Discord bot (DISCORD_TOKEN) until Ctrl-C")
    bot.add_argument(
        "--sync-global",
        action="store_true",
        help="publish the slash commands to every server after logging in (once per release)",
    )
    bot.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "db":
        return _db(args, settings)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "bot":
        return _bot(args, settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
