"""The `xpbase` command line: the embedded server, migrate and serve, as a user runs them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from xpbase import embedded
from xpbase.settings import REPO_ROOT


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A fresh XPBASE_DATA_DIR; any embedded server left in it is stopped afterwards."""
    path = Path(tempfile.mkdtemp(prefix="xpbase-cli-"))
    yield path
    subprocess.run([sys.executable, "-m", "xpbase.cli", "db", "stop"], env=_env(path), capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"XPBASE_DATA_DIR": str(data_dir), **extra})
    return env


def _xpbase(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpbase.cli", *args],
        env=_env(data_dir, **env),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _psql(url: str, sql: str) -> str:
    """Run ``sql`` with the wheel's psql (no .psqlrc, unaligned, tuples only); returns its output."""
    done = subprocess.run(
        [str(embedded.pg_bin("psql")), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def test_db_start_status_url_stop(data_dir: Path) -> None:
    """db start prints a TCP URL asyncpg and psql accept; status and url agree; stop stops it (exit 3)."""
    started = _xpbase(data_dir, "db", "start")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    port = int((data_dir / "pg-port").read_text())
    assert url == f"postgresql://postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("select inet_server_addr()::text || ':' || inet_server_port()") == (
        f"127.0.0.1/32:{port}"
    )
    assert await conn.fetchval("show shared_preload_libraries") == "pg_stat_statements"
    await conn.close()
    assert _psql(url, "select inet_server_port()") == str(port)

    assert _xpbase(data_dir, "db", "status").returncode == 0
    assert _xpbase(data_dir, "db", "url").stdout.strip() == url
    again = _xpbase(data_dir, "db", "start")
    assert "already running" in again.stderr

    assert _xpbase(data_dir, "db", "stop").returncode == 0
    assert _xpbase(data_dir, "db", "status").returncode == 3
    assert _xpbase(data_dir, "db", "url").returncode == 3


def test_db_port_is_remembered_and_replaced_when_taken(data_dir: Path) -> None:
    """A restart listens on the remembered port; when that port is taken, another one, and stderr says so."""
    first = _xpbase(data_dir, "db", "start").stdout.strip()
    assert _xpbase(data_dir, "db", "stop").returncode == 0
    again = _xpbase(data_dir, "db", "start")
    assert again.stdout.strip() == first
    assert _xpbase(data_dir, "db", "stop").returncode == 0

    port = int((data_dir / "pg-port").read_text())
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        moved = _xpbase(data_dir, "db", "start")
    assert moved.returncode == 0, moved.stderr
    new_port = int((data_dir / "pg-port").read_text())
    assert new_port != port
    assert moved.stdout.strip() == f"postgresql://postgres@127.0.0.1:{new_port}/postgres?sslmode=disable"
    assert f"port {port}" in moved.stderr and f"127.0.0.1:{new_port} instead" in moved.stderr
    assert _psql(moved.stdout.strip(), "select inet_server_port()") == str(new_port)


async def test_db_tcp_off_gives_the_socket_url(data_dir: Path) -> None:
    """XPBASE_EMBEDDED_TCP=false: the server listens on its Unix socket only, and db url prints that URL."""
    started = _xpbase(data_dir, "db", "start", XPBASE_EMBEDDED_TCP="false")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("postgresql://postgres@/postgres?host=")
    assert _xpbase(data_dir, "db", "url", XPBASE_EMBEDDED_TCP="false").stdout.strip() == url
    assert not (data_dir / "pg-port").exists()
    conn = await asyncpg.connect(url)
    assert await conn.fetchval("select inet_server_addr()") is None  # a socket connection
    assert await conn.fetchval("show listen_addresses") == ""
    await conn.close()


async def test_migrate_twice_reports_nothing_new(data_dir: Path) -> None:
    """The first migrate applies every migration; the second says it is up to date."""
    first = _xpbase(data_dir, "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied migration" in first.stderr
    second = _xpbase(data_dir, "migrate")
    assert second.returncode == 0, second.stderr
    assert "applied migration" not in second.stderr
    assert "up to date" in second.stderr


def _serve_until_healthy(data_dir: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "xpbase.cli", "serve"],
        env=_env(data_dir, XPBASE_PORT=str(port), XPBASE_JWT_SECRET="x" * 40),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Wait for start-up (initdb on a first run); this bounds a hang, it does not judge speed.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("serve did not become healthy")


def test_serve_runs_stops_on_ctrl_c_and_reuses_data(data_dir: Path) -> None:
    """serve starts Postgres, answers /health, stops both on SIGINT, and a second run keeps the data."""
    port = _free_port()
    proc = _serve_until_healthy(data_dir, port)
    url = _xpbase(data_dir, "db", "url").stdout.strip()
    psql = [
        str(Path(sys.executable).parent / "python"),
        "-c",
        "import asyncio, asyncpg, sys\n"
        "async def m():\n"
        "    c = await asyncpg.connect(sys.argv[1])\n"
        "    await c.execute(\"select set_config('role','service_role',false),"
        ' set_config(\'request.jwt.claims\',\'{\\"role\\":\\"service_role\\"}\',false)")\n'
        "    print(await c.fetchval(sys.argv[2]))\n"
        "asyncio.run(m())\n",
        url,
    ]
    made = subprocess.run(
        [*psql, "select public.ensure_profile('discord', 'keep-me', 'Keeper')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    assert _xpbase(data_dir, "db", "status").returncode == 3, "serve left its database running"

    proc = _serve_until_healthy(data_dir, port)
    try:
        url = _xpbase(data_dir, "db", "url").stdout.strip()
        psql[-1] = url
        found = subprocess.run(
            [*psql, "select id from public.profiles where display_name = 'Keeper'"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert found == made
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
