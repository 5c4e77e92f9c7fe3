"""The start-up sequence, written once: find or start the database, migrate, report.

``xpbase serve`` (service/server.py), ``xpbase bot`` (bot/launcher.py), ``xpbase migrate`` and
``xpbase demo`` use ``database_ready``; the service app opens its pool on the URL it yields.

What users hit while starting becomes one line and an exit code, never a traceback
(``StartupError``; ``xpbase.cli.main`` prints it). The codes (README, "Exit codes"):

====  ==========================================================================
0     done (or stopped with Ctrl-C after start-up)
1     any other failure (a migration failed, the engine refused something)
2     usage, or a bad setting (pydantic's message with the variable's name)
3     ``xpbase db status|url``: the embedded server is not running
4     the HTTP port is in use (XPBASE_PORT picks another)
5     the database is unreachable or refused the login (DATABASE_URL, password, database name)
6     Discord is unreachable or refused the bot's token / intents
130   interrupted with Ctrl-C during start-up
====  ==========================================================================
"""

from __future__ import annotations

import asyncio
import errno
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import asyncpg
from pydantic import ValidationError

from xpbase import embedded
from xpbase.db import resolve_url
from xpbase.migrate import MigrationError, MigrationReport, migrate
from xpbase.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_RUNNING = 0, 1, 2, 3
EXIT_PORT_IN_USE, EXIT_DATABASE, EXIT_DISCORD, EXIT_INTERRUPTED = 4, 5, 6, 130


class StartupError(Exception):
    """A start-up failure a user can fix: ``message`` is the one line to print, ``exit_code`` the status."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def describe_settings_error(exc: ValidationError) -> str:
    """pydantic's message for a bad setting, naming the environment variable (``XPBASE_PORT: ...``)."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "settings"
        name = field if field.isupper() else f"XPBASE_{field.upper()}"
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, str | int | float) else ""
        parts.append(f"{name}: {error['msg']}{shown}")
    return "bad setting: " + "; ".join(parts)


def where(url: str) -> str:
    """``host:port/database`` of a Postgres URL, without the user or password (for messages)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = parts.hostname or (query.get("host") or ["localhost"])[0]
    port = parts.port or (query.get("port") or ["5432"])[0]
    return f"{host}:{port}{parts.path or '/'}"


def database_error(url: str, exc: BaseException) -> StartupError:
    """The one line for a database that cannot be reached or refuses us."""
    place = where(url)
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        reason = f"the server refused the login ({exc}); check the user and password in DATABASE_URL"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        reason = f"{exc}; create it or fix the database name in DATABASE_URL"
    elif isinstance(exc, TimeoutError):
        reason = "no answer within 10 s; is the server up and the address in DATABASE_URL right?"
    else:
        reason = f"{exc.__class__.__name__}: {exc}".rstrip(": ")
        reason += "; is the server running and DATABASE_URL right?"
    return StartupError(f"cannot reach the database at {place}: {reason}", EXIT_DATABASE)


def check_port_free(host: str, port: int) -> None:
    """StartupError (exit 4) when ``host:port`` cannot be bound, naming XPBASE_PORT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is in use (another xpbase or program); pick another with "
                    f"XPBASE_PORT={port + 1 if port < 65535 else 8081}",
                    EXIT_PORT_IN_USE,
                ) from None
            raise StartupError(
                f"cannot listen on {host}:{port}: {exc.strerror} (XPBASE_HOST, XPBASE_PORT)", 2
            ) from None


async def _ping(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    await conn.close()


@dataclass(frozen=True)
class ReadyDatabase:
    """A database that answers and is migrated: ``url``, whether this process ``started`` it, the report."""

    url: str
    started: bool
    report: MigrationReport | None


@contextmanager
def database_ready(
    settings: Settings,
    *,
    run_migrations: bool = True,
    say: Callable[[str], None] = print,
    stop_started: bool = True,
) -> Iterator[ReadyDatabase]:
    """Find (``DATABASE_URL``) or start (the embedded server) the database, check it answers, migrate, report.

    Yields a ReadyDatabase. When this call started the embedded server and ``stop_started``, it is stopped
    again when the block ends (a server started by ``xpbase db start`` or ``make run`` keeps running).
    Raises StartupError: exit 5 when the database is unreachable or refuses the login, 1 when a
    migration fails or the embedded server cannot start.
    """
    try:
        url, started = resolve_url(settings)
    except subprocess.CalledProcessError as exc:
        raise StartupError(
            f"the embedded Postgres did not start ({exc.cmd[0] if exc.cmd else 'pg_ctl'} exited "
            f"{exc.returncode});"
            f" its log is in {embedded.pgdata_path(settings.data_dir)}/log",
            EXIT_FAILED,
        ) from None
    if started:
        say(f"started the embedded Postgres in {embedded.pgdata_path(settings.data_dir)}")
    try:
        try:
            asyncio.run(_ping(url))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise database_error(url, exc) from None
        report = None
        if run_migrations:
            try:
                report = asyncio.run(
                    migrate(url, settings.supabase_dir, progress=lambda line: say(f"  {line}"))
                )
            except MigrationError as exc:
                raise StartupError(f"migration failed: {exc}", EXIT_FAILED) from None
            say(f"schema: {report.already_applied + len(report.applied)} migration(s) applied")
        yield ReadyDatabase(url, started, report)
    finally:
        if started and stop_started:
            embedded.stop(settings.data_dir)
            say("stopped the embedded Postgres")
