"""Service fixtures: the Quart app on the per-test database, and token minting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.app import create_app
from tests.service.razorpay_standin import RazorpayStandIn
from tests.service.razorpay_standin import start as start_razorpay
from tests.service.standins import StandIns
from tests.service.standins import start as start_standins
from xpbase.db import Database
from xpbase.settings import Settings

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def make_token(secret: str = JWT_SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    """A signed access token; claims default to a valid member token expiring in 10 minutes."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": "xpbase",
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, secret, algorithm=algorithm)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Extra Settings fields for the ``app`` fixture; test modules override this fixture."""
    return {}


@pytest.fixture
async def app(db: Database, tmp_path: Any, settings_overrides: dict[str, Any]) -> AsyncIterator[Quart]:
    """The app, serving (startup hooks run) on the per-test database."""
    settings = Settings(**{"jwt_secret": JWT_SECRET, "data_dir": tmp_path, **settings_overrides})
    application = create_app(settings, database=db)
    async with application.test_app():
        yield application


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


REDIRECT_URI = "https://app.example.test/auth/callback"
SPA_REDIRECT_URI = "http://localhost:5173/auth/callback"
APP_ORIGIN = "https://app.example.test"


@pytest.fixture(scope="session")
def standins() -> Iterator[StandIns]:
    """Discord, GitHub and Google stand-ins on 127.0.0.1 for the whole run (tests/service/standins.py)."""
    state, stop = start_standins((REDIRECT_URI, SPA_REDIRECT_URI))
    try:
        yield state
    finally:
        stop()


@pytest.fixture
def oauth(standins: StandIns) -> Iterator[StandIns]:
    """The stand-ins, with per-test choices (consenting accounts, tampering) forgotten afterwards."""
    standins.reset()
    yield standins
    standins.reset()


def oauth_settings(standins: StandIns, **extra: Any) -> dict[str, Any]:
    """Settings overrides: all three providers against the stand-ins, both redirect URIs allowed."""
    return {**standins.settings(), "oauth_redirect_uris": [REDIRECT_URI, SPA_REDIRECT_URI], **extra}


@pytest.fixture(scope="session")
def razorpay() -> Iterator[RazorpayStandIn]:
    """The Razorpay stand-in on 127.0.0.1 for the whole run (tests/service/razorpay_standin.py)."""
    state, stop = start_razorpay()
    try:
        yield state
    finally:
        stop()
