"""Running the service under Hypercorn (``xpbase serve``, ``make run``)."""

from __future__ import annotations

import asyncio
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
    await hypercorn_serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


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
