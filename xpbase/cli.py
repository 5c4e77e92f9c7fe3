"""The ``xpbase`` command line.

xpbase db start|stop|status|url   the embedded Postgres (when DATABASE_URL is unset)
xpbase migrate                    apply the migrations, and seed.sql once per database
xpbase migration new NAME         write a migration with the functions and triggers edited in supabase/sql/
xpbase migration check            fail (exit 1) while an edit in supabase/sql/ has no migration
xpbase serve                      migrate, then serve the HTTP API with Hypercorn (and the bot
                                  when DISCORD_TOKEN is set)
xpbase bot [--sync-global]        migrate, then run the Discord bot alone
xpbase worker [--concurrency N]   migrate, then run a job queue worker (deliveries, periodic jobs)
xpbase replay stackexchange DIR   replay a Stack Exchange data dump through the engine, with a report
xpbase demo [--seed N] [--remove] load (or take out) a demo community in the running database
xpbase load challenges FILE.yaml  add or update challenges from a YAML file (idempotent)
xpbase load rulepack NAME         load a rule pack (supabase/rulepacks/NAME.sql; idempotent)
xpbase rules diff FILE            who a rule change (YAML/JSON) would move: XP, levels, tiers, reward roles
xpbase rules apply FILE --reason  apply it: the change, correction rows for every award it changes
xpbase token PROFILE              print a development access token for a profile (XPBASE_ENV=development)
xpbase admin grant PROFILE        make a profile an admin (the first admin)

Start-up failures print one line and exit with the codes of xpbase.startup (README, "Exit codes").
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from pydantic import ValidationError
from rich.console import Console

from xpbase import embedded
from xpbase.db import Database, resolve_url
from xpbase.errors import DomainError
from xpbase.migrate import MigrationError, migrate
from xpbase.settings import Settings, get_settings
from xpbase.startup import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    StartupError,
    database_ready,
    describe_settings_error,
)

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
    with database_ready(settings, run_migrations=False, say=console.print) as ready:
        try:
            report = asyncio.run(
                migrate(ready.url, settings.supabase_dir, progress=lambda line: console.print(f"  {line}"))
            )
        except MigrationError as exc:
            raise StartupError(f"migration failed: {exc}") from None
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


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from xpbase.worker import run_worker

    with database_ready(settings, run_migrations=not args.no_migrate, say=console.print) as ready:
        console.print("[green]xpbase worker[/] running; Ctrl-C stops")
        asyncio.run(run_worker(settings, ready.url, concurrency=args.concurrency))
    return 0


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


def _require_development(settings: Settings, what: str) -> None:
    if settings.env != "development":
        raise StartupError(
            f"{what} is for development databases: XPBASE_ENV is {settings.env!r} "
            "(set XPBASE_ENV=development)",
            EXIT_USAGE,
        )


async def _find_profile(db: Database, text: str) -> UUID:
    """A profile by id, or by exact display name when exactly one profile has it (StartupError otherwise)."""
    try:
        return UUID(text)
    except ValueError:
        pass
    async with db.as_service() as conn:
        found = await conn.fetch("select id from public.profiles where display_name = $1 limit 2", text)
    if len(found) != 1:
        raise StartupError(
            f"{'no' if not found else 'more than one'} profile named {text!r}: give the profile id instead",
            EXIT_USAGE,
        )
    return UUID(str(found[0]["id"]))


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    async def run(url: str) -> int:
        db = await Database.connect(url, min_size=1, max_size=2)
        try:
            return await work(db)
        finally:
            await db.close()

    with database_ready(settings, say=console.print, stop_started=False) as ready:
        return asyncio.run(run(ready.url))


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from xpbase import demo

    _require_development(settings, "xpbase demo")

    async def work(db: Database) -> int:
        try:
            if args.remove:
                removed = await demo.remove(db)
                console.print(
                    f"[green]removed[/] {removed} demo members: XP reset by correction rows, hidden from "
                    "every "
                    "board (the ledger is append-only: their rows stay)"
                )
                return 0
            report = await demo.load(db, args.seed, days=args.days)
        except demo.DemoError as exc:
            raise StartupError(str(exc), EXIT_FAILED) from None
        console.print(
            f"[green]loaded[/] {report.members} demo members (seed {args.seed}): {report.awards} awards "
            f"({report.xp:,} XP credited), {report.check_ins} check-ins, "
            f"{report.finalized_seasons} season(s) "
            "finalized"
        )
        for name, pid, xp in report.top:
            print(f"{pid}  {xp:>7,} XP  {name}")
        console.print(f"open http://{settings.host}:{settings.port}/ (remove with `xpbase demo --remove`)")
        return 0

    return _with_database(settings, work)


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from service.lib.auth_sessions import start_session
    from service.lib.tokens import SettingsError, load_token_keys
    from xpbase.rpc import PostgresRPC

    _require_development(settings, "xpbase token")
    try:
        keys = load_token_keys(settings)
    except SettingsError as exc:
        raise StartupError(f"bad setting: {exc}", EXIT_USAGE) from None

    async def work(db: Database) -> int:
        pid = await _find_profile(db, args.profile)
        try:
            session = await start_session(PostgresRPC(db), keys, settings, pid)
        except DomainError as exc:
            raise StartupError(exc.message, EXIT_USAGE) from None
        console.print(
            f"access token for {session.user.display_name} ({session.user.role}), valid "
            f"{keys.access_ttl_seconds} s; use it as `Authorization: Bearer <token>`"
        )
        print(session.access.token)
        return 0

    return _with_database(settings, work)


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    from xpbase.models.profiles import AdminGrant

    async def work(db: Database) -> int:
        pid = await _find_profile(db, args.profile)
        try:
            grant = AdminGrant.model_validate(await db.rpc("service_role_grant_admin", profile_id=pid))
        except DomainError as exc:
            raise StartupError(exc.message, EXIT_USAGE) from None
        console.print(
            f"[green]{grant.display_name}[/] ({grant.profile_id}) is an admin"
            + ("" if grant.changed else " already")
        )
        return 0

    return _with_database(settings, work)


def _import_availability(args: argparse.Namespace, settings: Settings) -> int:
    """``xpbase import availability FILE.csv``: parse a Google Forms export and import what it could read."""
    from xpbase.availability_text import parse_csv
    from xpbase.db import Database
    from xpbase.errors import DomainError

    try:
        result = parse_csv(args.file.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {args.file}:[/] {exc}")
        return 2
    for row in result.unreadable:
        console.print(
            f"[yellow]line {row.line}[/] {row.name or '?'} <{row.email or '?'}>: {row.reason}: {row.text!r}"
        )
    if args.dry_run:
        console.print(
            f"{len(result.readable)} row(s) readable, {len(result.unreadable)} not (dry run: nothing"
            f" imported)"
        )
        return 0 if not result.unreadable else 1

    async def run() -> dict[str, int]:
        url, _ = resolve_url(settings)
        db = await Database.connect(url, min_size=1, max_size=1)
        try:
            return await db.rpc("admin_import_review_availability", rows=result.import_rows())
        finally:
            await db.close()

    try:
        imported = asyncio.run(run())
    except DomainError as exc:
        console.print(f"[red]the database refused the import ({exc.error.sqlstate}):[/] {exc.message}")
        return 1
    console.print(
        f"imported {len(result.readable)} row(s): {imported['created']} professional(s) added, "
        f"{imported['updated']} updated; {len(result.unreadable)} row(s) not read (listed above)"
    )
    return 0 if not result.unreadable else 1


def _load_challenges(args: argparse.Namespace, settings: Settings) -> int:
    """``xpbase load challenges FILE.yaml``: exit 2 for a file that cannot be read or is invalid (each
    problem with its line), 1 when the database refuses a batch, 0 once every challenge is saved."""
    from xpbase.challenges import ChallengeFileError, load_challenges, read_challenges

    try:
        read_challenges(args.file)
    except OSError as exc:
        console.print(f"[red]cannot read {args.file}:[/] {exc}")
        return 2
    except ChallengeFileError as exc:
        for problem in exc.problems:
            console.print(f"[red]{problem}[/]", soft_wrap=True, markup=False, highlight=False)
        console.print(f"{len(exc.problems)} problem(s); nothing loaded")
        return 2

    def progress(saved: int, read: int) -> None:
        console.print(f"saved {saved}/{read} challenge(s)")

    async def work(db: Database) -> int:
        try:
            report = await load_challenges(db, args.file, progress)
        except DomainError as exc:
            console.print(
                f"[red]the database refused the challenges ({exc.error.sqlstate}):[/] {exc.message}"
            )
            return 1
        console.print(
            f"[green]loaded[/] {report.read} challenge(s) from {args.file}: {report.created} new, "
            f"{report.updated} updated, {report.unchanged} unchanged; {report.total} in the catalogue"
        )
        return 0

    return _with_database(settings, work)


def _load_rulepack(args: argparse.Namespace, settings: Settings) -> int:
    """``xpbase load rulepack NAME``: exit 2 for a name with no pack (the packs are listed), 1 when the
    database refuses the pack (nothing of it kept), 0 once it is loaded, with the rows it added per table."""
    import asyncpg

    from xpbase.rulepacks import RulePackError, load_rule_pack, pack_path

    try:
        pack_path(settings.supabase_dir, args.name)
    except RulePackError as exc:
        console.print(f"[red]{exc}[/]")
        return 2

    async def work(db: Database) -> int:
        console.print(f"loading rule pack {args.name} ({settings.supabase_dir / 'rulepacks'})")
        try:
            report = await load_rule_pack(db, settings.supabase_dir, args.name)
        except (DomainError, asyncpg.PostgresError) as exc:
            console.print(
                f"[red]the database refused rule pack {args.name}; nothing of it was kept:[/] {exc}"
            )
            return 1
        for table, (before, after) in report.counts.items():
            console.print(f"  {table}: {after} ({after - before:+d})")
        console.print(
            f"[green]loaded[/] rule pack {args.name}: {report.added} row(s) added"
            + ("" if report.added else " (it was loaded already; rows edited since are kept)")
        )
        return 0

    return _with_database(settings, work)


def _import_server(args: argparse.Namespace, settings: Settings) -> int:
    """``xpbase import mee6|amari|polaris|levelup|csv FILE --guild ID``: exit 1 when some rows were bad."""
    from xpbase import transfer

    async def work(db: Database) -> int:
        try:
            summary = await transfer.import_file(
                db, args.kind, args.file, args.guild, keep=args.keep, dry_run=args.dry_run, console=console
            )
        except DomainError as exc:
            console.print(f"[red]the database refused the import ({exc.error.sqlstate}):[/] {exc.message}")
            return 1
        except (OSError, ValueError) as exc:
            console.print(f"[red]cannot read {args.file}:[/] {exc}")
            return 2
        transfer.render(summary, console)
        return 0 if not summary.bad_rows else 1

    return _with_database(settings, work)


def _rules(args: argparse.Namespace, settings: Settings) -> int:
    """``xpbase rules diff|apply FILE``: exit 2 for a file that holds no valid change, 1 when the database
    refuses it (nothing kept) or the apply was declined, 0 once previewed or applied."""
    import json

    from rich.markup import escape
    from rich.prompt import Confirm

    from xpbase.models.rules import RuleChangeOutcome
    from xpbase.rules import RuleFileError, read_change, render, run

    try:
        change = read_change(args.file)
    except RuleFileError as exc:
        console.print(f"[red]{escape(str(exc))}[/]")
        return EXIT_USAGE
    apply = args.action == "apply"
    if apply and not args.yes and not sys.stdin.isatty():
        console.print("[red]xpbase rules apply asks before it writes: pass --yes to apply without asking[/]")
        return EXIT_USAGE

    def confirm(preview: RuleChangeOutcome) -> bool:
        render(preview, console)
        return Confirm.ask("Apply this change?", console=console, default=False)

    async def work(db: Database) -> int:
        try:
            outcome = await run(
                db,
                change,
                reason=args.reason if apply else None,
                max_members=args.max_members,
                confirm=confirm if apply and not args.yes else None,
                console=console,
            )
        except DomainError as exc:
            console.print(
                f"[red]the database refused the change ({exc.error.sqlstate}), nothing kept:[/] "
                + escape(exc.message)
            )
            return 1
        if outcome is None:
            console.print("not applied")
            return 1
        if args.json:
            print(json.dumps(outcome.model_dump(mode="json"), indent=1))
        elif not apply or args.yes:
            render(outcome, console)  # (a previewed apply was rendered before the question)
        if apply:
            console.print(f"[green]applied[/] as rule change {outcome.rule_change_id}")
        return 0

    return _with_database(settings, work)


def _max_members(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError("must be 0 to 1000")
    return value


def _reason(text: str) -> str:
    if not 1 <= len(text.strip()) <= 500:
        raise argparse.ArgumentTypeError("must be 1 to 500 characters")
    return text


def _export(args: argparse.Namespace, settings: Settings) -> int:
    """``xpbase export``: stream the tables out (stdout, or one file per table in --out)."""
    from xpbase import transfer

    tables = args.table or list(transfer.EXPORTS)
    unknown = [t for t in tables if t not in transfer.EXPORTS]
    if unknown:
        console.print(
            f"[red]unknown table(s):[/] {', '.join(unknown)} (known: {', '.join(transfer.EXPORTS)})"
        )
        return EXIT_USAGE

    async def work(db: Database) -> int:
        written = await transfer.export_all(db, args.out, args.format, tables)
        for table, count in written.items():
            console.print(f"{table}: {count:,} row(s)")
        return 0

    return _with_database(settings, work)


def _version(text: str) -> str:
    try:
        datetime.strptime(text, "%Y%m%d%H%M%S")
    except ValueError:
        raise argparse.ArgumentTypeError("a UTC time as YYYYMMDDHHmmss, e.g. 20261201093000") from None
    return text


def _days(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 120:
        raise argparse.ArgumentTypeError("must be 1 to 120")
    return value


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
    worker = sub.add_parser("worker", help="migrate, then run a job queue worker until Ctrl-C")
    worker.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="jobs at once (default XPBASE_WORKER_CONCURRENCY)",
    )
    worker.add_argument("--no-migrate", action="store_true", help="do not apply migrations first")
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
    demo = sub.add_parser("demo", help="load a demo community into the running database (development)")
    demo.add_argument(
        "--seed", type=int, default=1, help="the same seed gives the same community (default 1)"
    )
    demo.add_argument(
        "--days", type=_days, default=42, metavar="N", help="days of history up to now (1-120, default 42)"
    )
    demo.add_argument("--remove", action="store_true", help="take the demo community out again")
    token = sub.add_parser(
        "token", help="print a development access token for PROFILE (XPBASE_ENV=development)"
    )
    token.add_argument("profile", help="a profile id, or a display name that exactly one profile has")
    admin = sub.add_parser("admin", help="admin roles")
    admin_actions = admin.add_subparsers(dest="action", required=True)
    grant = admin_actions.add_parser("grant", help="make PROFILE an admin (how the first admin is made)")
    grant.add_argument("profile", help="a profile id, or a display name that exactly one profile has")

    load = sub.add_parser("load", help="load catalogue data from files")
    loads = load.add_subparsers(dest="kind", required=True)
    challenges = loads.add_parser(
        "challenges", help="add or update challenges from a YAML file (xpbase/challenges.py; idempotent)"
    )
    challenges.add_argument("file", type=Path, help="the YAML file (supabase/rulepacks/challenges.yaml)")
    rulepack = loads.add_parser(
        "rulepack", help="load a rule pack from supabase/rulepacks/ as service_role (xpbase/rulepacks.py)"
    )
    rulepack.add_argument("name", help="the pack: a file name in supabase/rulepacks/ without .sql (career)")
    rules = sub.add_parser("rules", help="preview or apply a change to the XP rules (xpbase/rules.py)")
    rule_actions = rules.add_subparsers(dest="action", required=True)
    for action, text in (
        ("diff", "who the change would move (XP, levels, tiers, reward roles); nothing is kept"),
        ("apply", "preview, ask, then write the change and a correction row for every award it changes"),
    ):
        parser_ = rule_actions.add_parser(action, help=text)
        parser_.add_argument("file", type=Path, help="the change: YAML or JSON (format in xpbase/rules.py)")
        parser_.add_argument(
            "--max-members",
            type=_max_members,
            default=50,
            metavar="N",
            help="list the N members moved most (0-1000, default 50); the counts cover everyone",
        )
        parser_.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
        if action == "apply":
            parser_.add_argument(
                "--reason", required=True, type=_reason, help="stored on every correction and told to members"
            )
            parser_.add_argument("--yes", action="store_true", help="apply without asking (scripts)")
    imp = sub.add_parser("import", help="import data from files")
    kinds = imp.add_subparsers(dest="kind", required=True)
    avail = kinds.add_parser(
        "availability",
        help="professionals' availability from a Google Forms CSV export (name, email, time zone, free text)",
    )
    avail.add_argument("file", type=Path, help="the CSV export")
    avail.add_argument(
        "--dry-run", action="store_true", help="parse and list unreadable rows; import nothing"
    )
    from xpbase.importers import SOURCES

    for source in SOURCES:
        server = kinds.add_parser(source, help=f"a Discord server's members from a {source} export")
        server.add_argument("file", type=Path, help="the export (JSON, or CSV of Discord id and XP or level)")
        server.add_argument(
            "--guild", required=True, help="the Discord server (guild) id the members belong to"
        )
        server.add_argument(
            "--keep",
            choices=("xp", "level"),
            default="xp",
            help="keep the XP number, or the level and progress",
        )
        server.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    export = sub.add_parser("export", help="stream tables out as CSV or JSON lines")
    export.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    export.add_argument("--out", type=Path, help="a directory for <table>.<format> files (default: stdout)")
    export.add_argument(
        "--table",
        action="append",
        help="profiles, ledger, seasons, season_scores, server_members (default: all)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``xpbase`` command given by ``argv`` (default: sys.argv); returns the exit status.

    Start-up failures (xpbase.startup.StartupError, a bad setting, Ctrl-C) print one line, no traceback.
    """
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as exc:
        console.print(f"[red]xpbase:[/] {describe_settings_error(exc)}", soft_wrap=True)
        return EXIT_USAGE
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return _dispatch(args, settings)
    except StartupError as exc:
        console.print(f"[red]xpbase {args.command}:[/] {exc.message}", soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print(
            f"[yellow]xpbase {args.command}:[/] interrupted (Ctrl-C) during start-up", soft_wrap=True
        )
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
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
    if args.command == "worker":
        return _worker(args, settings)
    if args.command == "load" and args.kind == "challenges":
        return _load_challenges(args, settings)
    if args.command == "load" and args.kind == "rulepack":
        return _load_rulepack(args, settings)
    if args.command == "import" and args.kind == "availability":
        return _import_availability(args, settings)
    if args.command == "import":
        return _import_server(args, settings)
    if args.command == "export":
        return _export(args, settings)
    if args.command == "rules":
        return _rules(args, settings)
    if args.command == "replay" and args.source == "stackexchange":
        return _replay_stackexchange(args, settings)
    if args.command == "demo":
        return _demo(args, settings)
    if args.command == "token":
        return _token(args, settings)
    if args.command == "admin" and args.action == "grant":
        return _admin(args, settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
