"""What users hit while starting xpbase: one line on stderr, no traceback, a documented exit code."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from xpbase.startup import EXIT_DATABASE, EXIT_DISCORD, EXIT_INTERRUPTED, EXIT_PORT_IN_USE, EXIT_USAGE


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DISCORD_TOKEN")}
    env.update({"XPBASE_DATA_DIR": str(tmp_path / "data"), "XPBASE_LOG_LEVEL": "warning", **extra})
    return env


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xpbase.cli", *args],
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no .env of the repository
    )


def _one_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    """The last stderr line, after checking there is no traceback and it names the command."""
    assert "Traceback" not in result.stderr, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"xpbase {command}:") or line.startswith("xpbase:"), result.stderr
    return line


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port held by a socket that listens but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_port_in_use_names_the_port_and_xpbase_port(tmp_path: Path, listening: int) -> None:
    """xpbase serve on a taken port: exit 4, the port and how to pick another."""
    result = _run(tmp_path, "serve", XPBASE_PORT=str(listening), DATABASE_URL="postgresql://x@127.0.0.1:1/x")
    line = _one_line(result, "serve")
    assert result.returncode == EXIT_PORT_IN_USE
    assert f"port {listening} on 127.0.0.1 is in use" in line and f"XPBASE_PORT={listening + 1}" in line


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    """Nothing listens at DATABASE_URL: exit 5, where it looked, no password in the message."""
    port = _closed_port()
    result = _run(tmp_path, "migrate", DATABASE_URL=f"postgresql://me:s3cret@127.0.0.1:{port}/xpbase")
    line = _one_line(result, "migrate")
    assert result.returncode == EXIT_DATABASE
    assert f"cannot reach the database at 127.0.0.1:{port}/xpbase" in line and "s3cret" not in result.stderr


def test_refused_login_and_missing_database_are_one_line(tmp_path: Path, database_url: str) -> None:
    """A role the server does not know, or a database it does not have: exit 5 with the server's reason."""
    wrong_user = database_url.replace("postgresql://postgres@", "postgresql://nobody_here@")
    result = _run(tmp_path, "migrate", DATABASE_URL=wrong_user)
    assert result.returncode == EXIT_DATABASE
    assert "refused the login" in _one_line(result, "migrate")
    missing = database_url.replace("/xpbase_", "/missing_")
    result = _run(tmp_path, "serve", DATABASE_URL=missing, XPBASE_PORT=str(_closed_port()))
    assert result.returncode == EXIT_DATABASE
    assert "does not exist" in _one_line(result, "serve")


def test_bad_setting_names_the_variable(tmp_path: Path) -> None:
    """XPBASE_PORT=eighty: exit 2 with pydantic's message and the variable's name."""
    result = _run(tmp_path, "serve", XPBASE_PORT="eighty")
    line = _one_line(result, "serve")
    assert result.returncode == EXIT_USAGE
    assert "XPBASE_PORT" in line and "eighty" in line and "integer" in line


def test_ctrl_c_during_start_up(tmp_path: Path, listening: int) -> None:
    """SIGINT while waiting for a database that never answers: exit 130, one line, no traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "xpbase.cli", "serve"],
        env=_env(
            tmp_path, DATABASE_URL=f"postgresql://x@127.0.0.1:{listening}/x", XPBASE_PORT=str(_closed_port())
        ),
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(3)  # imports done, waiting on the database
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate()
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith(
        "xpbase serve: interrupted"
    )


def test_discord_unreachable(tmp_path: Path, database_url: str) -> None:
    """xpbase bot with Discord's API not answering: exit 6 naming where it looked."""
    api = f"http://127.0.0.1:{_closed_port()}/api/v10"
    result = _run(
        tmp_path, "bot", DATABASE_URL=database_url, DISCORD_TOKEN="x.y.z", XPBASE_DISCORD_API_URL=api
    )
    line = _one_line(result, "bot")
    assert result.returncode == EXIT_DISCORD
    assert f"cannot reach Discord at {api}" in line


class RefusingDiscord:
    """Discord's REST API answering 401 to the bot's login (GET /users/@me), as it does for a bad token."""

    def __init__(self) -> None:
        self.port = _closed_port()
        self.ready = threading.Event()
        self.stop = threading.Event()

    def serve(self) -> None:
        async def refuse(_: web.Request) -> web.Response:
            return web.json_response({"message": "401: Unauthorized", "code": 0}, status=401)

        async def main() -> None:
            app = web.Application()
            app.router.add_get("/api/v10/users/@me", refuse)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self.ready.set()
            await asyncio.to_thread(self.stop.wait)
            await runner.cleanup()

        asyncio.run(main())


def test_discord_refuses_the_token(tmp_path: Path, database_url: str) -> None:
    """A 401 from Discord's login: exit 6, the token named, no traceback."""
    discord = RefusingDiscord()
    thread = threading.Thread(target=discord.serve)
    thread.start()
    try:
        discord.ready.wait()
        api = f"http://127.0.0.1:{discord.port}/api/v10"
        result = _run(
            tmp_path, "bot", DATABASE_URL=database_url, DISCORD_TOKEN="x.y.z", XPBASE_DISCORD_API_URL=api
        )
    finally:
        discord.stop.set()
        thread.join()
    line = _one_line(result, "bot")
    assert result.returncode == EXIT_DISCORD
    assert "Discord refused the token (DISCORD_TOKEN)" in line
