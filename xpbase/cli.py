"""The ``xpbase`` command line.

xpbase db start|stop|status|url   the embedded Postgres (when DATABASE_URL is unset)
xpbase migrate                    apply the migrations, and seed.sql once per database
xpbase migration new NAME         write a migration with the functions and triggers edited in supabase/sql/
xpbase migration check            fail (exit 1) while an edit in supabase/sql/ has no migration
xpbase serve                      migrate, then serve the HTTP API with Hypercorn (and the bot
                                  when DISCORD_TOKEN is set)
xpbase bot [--sync-global]        migrate, then run the Discord bot alone
xpbase replay stackexchange DIR   replay a Stack Exchange data dump through the engine, with a report
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

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
        url, started = embedded.start(settings.data_dir, tcp=settings.embedded_tcp)
        console.print(
            f"{'started' if started else 'already running'}: {embedded.pgdata_path(settings.data_dir)}"
        )
        print(url)
    elif args.action == "stop":
        stopped = embedded.stop(settings.data_dir)
        console.print("stopped" if stopped else "not running")
    elif args.action == "status":
        status = embedded.status(settings.data_dir, tcp=settings.embedded_tcp)
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
        status = embedded.status(settings.data_dir, tcp=settings.embedded_tcp)
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


def _migration(args: argparse.Namespace, settings: Settings) -> int:
    from xpbase import functions_diff

    try:
        if args.action == "check":
            changes = functions_diff.diff(settings.supabase_dir)
            if changes.empty:
                console.print("[green]the migrations hold every definition of the feature files[/]")
                return 0
            console.print("[red]edited in supabase/sql/ without a migration:[/]")
            for line in changes.summary():
                console.print(f"  {line}")
            console.print("write one with `xpbase migration new NAME`")
            return 1
        now = None
        if args.version:
            now = datetime.strptime(args.version, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        path, changes = functions_diff.new_migration(
            settings.supabase_dir, args.name, now=now, title=args.message
        )
    except functions_diff.FunctionsDiffError as exc:
        console.print(f"[red]{exc}[/]")
        return 1
    if path is None:
        console.print("nothing changed in supabase/sql/ since the last migration: no file written")
        return 0
    console.print(f"[green]wrote {path}[/]")
    for line in changes.summary():
        console.print(f"  {line}")
    return 0


def _serve(settings: Settings) -> int:
    from service.server import serve

    return serve(settings)


def _bot(args: argparse.Namespace, settings: Settings) -> int:
    from bot.launcher import main as run_bot

    return run_bot(settings, sync_global=args.sync_global, run_migrations=not args.no_migrate)


def _replay_stackexchange(args: argparse.Namespace, settings: Settings) -> int:
    from xpbase.db import recreate_database, url_with_database
    from xpbase.errors import DomainError
    from xpbase.replay.report import RichProgress, render
    from xpbase.replay.stackexchange import DumpError, replay

    if args.reset and not args.database:
        console.print(
            "[red]--reset drops a database: name it with --database[/] (the ledger is append-only, so "
            "a replay cannot be undone inside a database)"
        )
        return 2
    if not args.dir.is_dir():
        console.print(f"[red]not a folder:[/] {args.dir}")
        return 2
    url, _ = resolve_url(settings)
    if args.database:
        try:
            target = url_with_database(url, args.database)
        except ValueError as exc:
            console.print(f"[red]{exc}[/]")
            return 2
        created = asyncio.run(recreate_database(url, args.database, drop=args.reset))
        console.print(f"database {args.database}: {'created' if created else 'exists'}")
        url = target
    try:
        asyncio.run(migrate(url, settings.supabase_dir, progress=lambda line: console.print(f"  {line}")))
    except MigrationError as exc:
        console.print(f"[red]migration failed:[/] {exc}")
        return 1
    out = Console(highlight=False)
    try:
        with RichProgress(console) as progress:
            report = asyncio.run(
                replay(
                    url,
                    args.dir,
                    settings.supabase_dir,
                    site=args.site,
                    batch_size=args.batch_size,
                    report_csv=args.report_csv,
                    progress=progress,
                )
            )
    except DumpError as exc:
        console.print(f"[red]cannot read the dump:[/] {exc}")
        return 1
    except DomainError as exc:
        console.print(f"[red]the engine refused an award ({exc.error.sqlstate}):[/] {exc.message}")
        return 1
    render(report, out)
    return 0


def _version(text: str) -> str:
    try:
        datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        raise argparse.ArgumentTypeError("a UTC time as YYYYMMDDHHmmss, e.g. 20261201093000") from None
    return text


def _batch_size(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10000:
        raise argparse.ArgumentTypeError("must be 1 to 10000")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``xpbase`` command line: db, migrate, serve, bot and replay subcommands."""
    parser = argparse.ArgumentParser(prog="xpbase", description="xpbase: XP engine, service and tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="the embedded Postgres server")
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    sub.add_parser("migrate", help="apply the migrations, and seed.sql once per database (idempotent)")
    migration = sub.add_parser("migration", help="migrations from the feature files in supabase/sql/")
    actions = migration.add_subparsers(dest="action", required=True)
    new = actions.add_parser(
        "new",
        help="write supabase/migrations/<UTC timestamp>_NAME.sql with the function and trigger "
        "definitions that changed in supabase/sql/",
    )
    new.add_argument("name", help="short description: letters, digits, '_' and '-' (e.g. add_badges)")
    new.add_argument(
        "--version",
        type=_version,
        metavar="YYYYMMDDHHmmss",
        help="the migration's version (default: now, UTC; moved past the newest migration if needed)",
    )
    new.add_argument(
        "-m",
        "--message",
        metavar="TEXT",
        help="what the change is and why: the migration's opening comment (default: NAME)",
    )
    actions.add_parser("check", help="exit 1 while a definition in supabase/sql/ has no migration")
    sub.add_parser("serve", help="migrate, then serve the HTTP API (Hypercorn) on XPBASE_HOST:XPBASE_PORT")
    bot = sub.add_parser("bot", help="migrate, then run the Discord bot (DISCORD_TOKEN) until Ctrl-C")
    bot.add_argument(
        "--sync-global",
        action="store_true",
        help="publish the slash commands to every server after logging in (once per release)",
    )
    bot.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
    replay = sub.add_parser("replay", help="replay a real activity history through the engine")
    sources = replay.add_subparsers(dest="source", required=True)
    se = sources.add_parser(
        "stackexchange",
        help="a Stack Exchange data dump folder (Users.xml, Posts.xml, Votes.xml)",
        description="Replay a Stack Exchange site's votes through award_xp and compare with the published "
        "reputation. Running it again changes nothing (idempotency keys per vote).",
    )
    se.add_argument("dir", type=Path, help="the dump folder of one site, e.g. ~/dumps/beer.stackexchange.com")
    se.add_argument("--site", help="site name (default: the folder's name, without .stackexchange.com)")
    se.add_argument(
        "--report-csv",
        type=Path,
        metavar="PATH",
        help="write se_user_id,published_reputation,xp,level,tier for every user",
    )
    se.add_argument(
        "--database",
        metavar="NAME",
        help="replay into database NAME on the same server (created and migrated when missing) "
        "instead of the configured one",
    )
    se.add_argument("--reset", action="store_true", help="drop and recreate --database first")
    se.add_argument(
        "--batch-size",
        type=_batch_size,
        default=2000,
        metavar="N",
        help="awards per transaction (1-10000, default 2000)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``xpbase`` command given by ``argv`` (default: sys.argv); returns the exit status."""
    args = build_parser().parse_args(argv)
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "db":
        return _db(args, settings)
    if args.command == "migrate":
        return _migrate(settings)
    if args.command == "migration":
        return _migration(args, settings)
    if args.command == "serve":
        return _serve(settings)
    if args.command == "bot":
        return _bot(args, settings)
    if args.command == "replay" and args.source == "stackexchange":
        return _replay_stackexchange(args, settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
