"""Service fixtures: the Quart app on the per-test database, and token minting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.app import create_app
from xpbase.db import Database
from xpbase.settings import Settings

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def make_token(secret: str = JWT_SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    """A signed access token; claims default to a valid member token expiring in 10 minutes."""
    now = int(time.time())
    body: dict[str, Any] = {"aud": "authenticated", "role": "authenticated", "iat": now, "exp": now + 600}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, secret, algorithm=algorithm)


@pytest.fixture
async def app(db: Database, tmp_path: Any) -> AsyncIterator[Quart]:
    """The app, serving (startup hooks run) on the per-test database."""
    settings = Settings(jwt_secret=JWT_SECRET, data_dir=tmp_path)
    application = create_app(settings, database=db)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()
