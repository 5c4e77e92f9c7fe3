"""Supabase Auth mode over HTTP: GoTrue-shaped access tokens (HS256 secret, or RS256 from a JWKS) are trusted.

The user is inserted the way GoTrue does (tests/sql/test_supabase_auth.py), so
the trigger makes the profile with the same id; the token is shaped like
GoTrue's (iss = the project's auth URL, aud and role authenticated, email,
app_metadata.provider, amr, session_id).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from quart.typing import TestClientProtocol as Client

from tests.service.conftest import make_token
from tests.sql.test_supabase_auth import gotrue_sign_up
from xpbase.db import Database

AUTH_URL = "https://abcdefghij.supabase.test/auth/v1"
PROJECT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = "gotrue-test-key"


def gotrue_token(user: UUID, *, secret: Any = PROJECT_SECRET, algorithm: str = "HS256", **extra: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": AUTH_URL,
        "sub": str(user),
        "aud": "authenticated",
        "exp": now + 3600,
        "iat": now,
        "email": "grace@example.com",
        "phone": "",
        "app_metadata": {"provider": "email", "providers": ["email"]},
        "user_metadata": {},
        "role": "authenticated",
        "aal": "aal1",
        "amr": [{"method": "otp", "timestamp": now}],
        "session_id": str(uuid4()),
        "is_anonymous": False,
        **extra,
    }
    headers = {"kid": KID} if algorithm != "HS256" else None
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


@pytest.fixture
async def jwks_server() -> AsyncIterator[str]:
    """The project's JWKS on 127.0.0.1 (GoTrue serves it at /auth/v1/.well-known/jwks.json)."""
    public = jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)
    document = {"keys": [{**public, "kid": KID, "alg": "RS256", "use": "sig"}]}

    async def handler(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/auth/v1/.well-known/jwks.json"
    finally:
        await runner.cleanup()


@pytest.fixture
def settings_overrides(jwks_server: str) -> dict[str, Any]:
    return {
        "supabase_auth": "beside",
        "supabase_auth_url": AUTH_URL,
        "supabase_jwt_secret": PROJECT_SECRET,
        "supabase_jwks_url": jwks_server,
    }


async def signed_up(db: Database) -> UUID:
    async with db.pool.acquire() as conn:
        return await gotrue_sign_up(conn, "email", None, "grace@example.com", {"full_name": "Grace"})


async def test_a_gotrue_hs256_token_reads_the_profile_made_by_the_trigger(
    client: Client, db: Database
) -> None:
    user = await signed_up(db)
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {gotrue_token(user)}"})
    assert response.status_code == 200
    me = await response.get_json()
    assert me["id"] == str(user) and me["display_name"] == "Grace"


async def test_a_gotrue_rs256_token_is_verified_with_the_jwks(client: Client, db: Database) -> None:
    user = await signed_up(db)
    token = gotrue_token(user, secret=RSA_KEY, algorithm="RS256")
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and (await response.get_json())["id"] == str(user)


@pytest.mark.parametrize(
    ("claims", "secret"),
    [
        ({}, "another-projects-secret-that-is-at-least-32-chars"),  # wrong secret
        (
            {"iss": "https://other.supabase.test/auth/v1"},
            PROJECT_SECRET,
        ),  # other project (not xpbase's either)
        ({"role": "service_role"}, PROJECT_SECRET),  # the service key is no member
        ({"role": "anon"}, PROJECT_SECRET),
        ({"aud": "other"}, PROJECT_SECRET),
        ({"exp": int(time.time()) - 10}, PROJECT_SECRET),
    ],
)
async def test_bad_gotrue_tokens_are_401(
    client: Client, db: Database, claims: dict[str, Any], secret: str
) -> None:
    user = await signed_up(db)
    token = gotrue_token(user, secret=secret, **claims)
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_beside_mode_still_accepts_xpbase_tokens(client: Client, db: Database) -> None:
    user = await signed_up(db)
    token = make_token(sub=str(user))
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
