"""``xpbase serve`` on a free loopback port for browser tests, stopped with Ctrl-C (SIGINT) afterwards."""

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
from contextlib import contextmanager
from pathlib import Path

import httpx

from xpbase.settings import REPO_ROOT


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_env(database_url: str, data_dir: Path, port: int) -> dict[str, str]:
    """The environment of an ``xpbase`` command on ``database_url``: development mode, no Discord."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "XPBASE_DATA_DIR": str(data_dir),
        "XPBASE_PORT": str(port),
        "XPBASE_ENV": "development",
    }
    env.pop("DISCORD_TOKEN", None)
    return env


@contextmanager
def served(database_url: str) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT``) of ``xpbase serve`` on ``database_url``, up and healthy."""
    data_dir = Path(tempfile.mkdtemp(prefix="xpbase-web-"))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "xpbase.cli", "serve"],
        env=serve_env(database_url, data_dir, port),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else "serve exited"
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        server.send_signal(signal.SIGINT)
        server.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
