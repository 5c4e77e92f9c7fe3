"""Running the service under Hypercorn (``xpbase serve``, ``make run``)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from rich.console import Console

from xpbase.settings import Settings
from xpbase.startup import check_port_free, database_ready

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

    assert settings.database_url, "serve hands the database URL in"
    console.print("[green]xpbase worker[/] starting beside the service")
    try:
        await Worker(settings, settings.database_url).run()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("the job queue worker stopped; the service keeps running")


async def _run_bot(settings: Settings) -> None:
    """The Discord bot beside the service (DISCORD_TOKEN set); if it fails, the service keeps running."""
    from bot.launcher import discord_error, run_bot

    console.print("[green]xpbase bot[/] starting beside the service")
    try:
        await run_bot(settings)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        known = discord_error(exc, settings)
        if known is None:
            log.exception("the Discord bot stopped; the service keeps running")
        else:  # Discord refused or did not answer: one line, the service keeps running
            console.print(f"[red]xpbase bot:[/] {known.message}; the service keeps running", soft_wrap=True)


def serve(settings: Settings) -> int:
    """Check the port, find or start the database and migrate (xpbase.startup), then serve until a signal.

    Returns 0 after a clean stop. Raises xpbase.startup.StartupError (one line and an exit code, printed
    by the CLI) when the port is in use or the database cannot be reached. When this call started the
    embedded Postgres it also stops it on the way out; a server started by ``xpbase db start`` keeps running.
    """
    check_port_free(settings.host, settings.port)
    with database_ready(settings, say=console.print) as ready:
        try:
            asyncio.run(_run(settings.model_copy(update={"database_url": ready.url})))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:  # taken between the check and Hypercorn's bind
                check_port_free(settings.host, settings.port)
            raise
    return 0
