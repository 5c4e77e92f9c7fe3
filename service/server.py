"""Running the service under Hypercorn (``xpbase serve``, ``make run``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from rich.console import Console

from xpbase import embedded
from xpbase.db import resolve_url
from xpbase.migrate import MigrationError, migrate
from xpbase.settings import Settings

log = logging.getLogger(__name__)
console = Console(stderr=True, highlight=False)


async def _run(settings: Settings) -> None:
    from service.app import create_app

    app = create_app(settings)
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = logging.getLogger("hypercorn.access")
    config.errorlog = logging.getLogger("hypercorn.error")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    console.print(
        f"[green]xpbase[/] serving on http://{settings.host}:{settings.port} (docs at /docs); Ctrl-C stops"
    )
    bot_task = asyncio.create_task(_run_bot(settings), name="xpbase-bot") if settings.discord_token else None
    worker_task = (
        asyncio.create_task(_run_worker(settings), name="xpbase-worker")
        if settings.worker_in_process
        else None
    )
    try:
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
    finally:
        for task in (bot_task, worker_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _run_worker(settings: Settings) -> None:
    """A queue worker beside the service (XPBASE_WORKER_IN_PROCESS); if it fails, the service goes on."""
    from xpbase.worker import Worker

    url, _ = resolve_url(settings, start_embedded=False)
    console.print("[green]xpbase worker[/] starting beside the service")
    try:
        await Worker(settings, url).run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the job queue worker stopped; the service keeps running")


async def _run_bot(settings: Settings) -> None:
    """The Discord bot beside the service (DISCORD_TOKEN set); if it fails, the service keeps running."""
    from bot.launcher import run_bot

    console.print("[green]xpbase bot[/] starting beside the service")
    try:
        await run_bot(settings)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the Discord bot stopped; the service keeps running")


def serve(settings: Settings) -> int:
    """Start the database if needed, migrate, and serve until SIGINT/SIGTERM. Returns an exit code.

    When this call started the embedded Postgres it also stops it on the way
    out; a server started by ``xpbase db start`` keeps running.
    """
    url, started = resolve_url(settings)
    if started:
        console.print(f"started the embedded Postgres in {embedded.pgdata_path(settings.data_dir)}")
    try:
        try:
            report = asyncio.run(
                migrate(url, settings.supabase_dir, progress=lambda line: console.print(f"  {line}"))
            )
        except MigrationError as exc:
            console.print(f"[red]migration failed:[/] {exc}")
            return 1
        console.print(f"schema: {report.already_applied + len(report.applied)} migration(s) applied")
        asyncio.run(_run(settings))
    finally:
        if started:
            embedded.stop(settings.data_dir)
            console.print("stopped the embedded Postgres")
    return 0
