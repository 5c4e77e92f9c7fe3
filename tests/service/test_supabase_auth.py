"""Supabase Auth mode over HTTP: GoTrue-shaped access tokens (HS256 secret, or RS256 from a JWKS) are trusted.

The user is inserted the way GoTrue does (tests/sql/test_supabase_auth.py), so
the trigger makes the profile with the same id; the token is shaped like
GoTrue's (iss = the project's auth URL, aud and role authenticated, email,
app_metadata.provider, amr, session_id). The project's JWKS is served on
127.0.0.1 by a stand-in that can rotate its keys and counts its reads.
"""

from __future__ import annotations

import asyncio
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
#: The key the project rotates in.
NEW_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_KID = "gotrue-rotated-key"


def gotrue_token(
    user: UUID, *, secret: Any = PROJECT_SECRET, algorithm: str = "HS256", kid: str = KID, **extra: Any
) -> str:
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
    headers = {"kid": kid} if algorithm != "HS256" else None
    return jwt.encode(claims, secret, algorithm=algorithm, headers=headers)


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**public, "kid": kid, "alg": "RS256", "use": "sig"}


class ProjectJWKS:
    """GoTrue's /auth/v1/.well-known/jwks.json: ``keys`` can change (a rotation), ``hits`` counts reads."""

    def __init__(self) -> None:
        self.keys = [jwk(RSA_KEY, KID)]
        self.hits = 0
        self.failing = False
        self.url = ""

    async def handler(self, _request: web.Request) -> web.Response:
        self.hits += 1
        if self.failing:
            return web.json_response({"message": "unavailable"}, status=503)
        return web.json_response({"keys": self.keys})


@pytest.fixture
async def project_jwks() -> AsyncIterator[ProjectJWKS]:
    """The project's JWKS on 127.0.0.1."""
    jwks = ProjectJWKS()
    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", jwks.handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    jwks.url = f"http://127.0.0.1:{port}/auth/v1/.well-known/jwks.json"
    try:
        yield jwks
    finally:
        await runner.cleanup()


@pytest.fixture
def settings_overrides(project_jwks: ProjectJWKS) -> dict[str, Any]:
    return {
        "supabase_auth": "beside",
        "supabase_auth_url": AUTH_URL,
        "supabase_jwt_secret": PROJECT_SECRET,
        "supabase_jwks_url": project_jwks.url,
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


async def test_routes_that_read_the_caller_optionally_verify_gotrue_tokens(
    client: Client, db: Database
) -> None:
    """GET /v1/store/items reads an optional caller: a GoTrue RS256 token passes, a forged one is 401."""
    user = await signed_up(db)
    assert (await client.get("/v1/store/items")).status_code == 200
    token = gotrue_token(user, secret=RSA_KEY, algorithm="RS256")
    response = await client.get("/v1/store/items", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    forged = gotrue_token(user, secret=NEW_RSA_KEY, algorithm="RS256")
    response = await client.get("/v1/store/items", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


# Key rotation: the JWKS is read again for an unknown kid (rate-limited) and after its max age ------------

REFETCH_INTERVAL = 1.0


async def me(client: Client, token: str) -> tuple[int, dict[str, Any]]:
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, await response.get_json()


class TestRotation:
    """A refetch interval of one second (the default is 30) and the default max age (600 s)."""

    @pytest.fixture
    def settings_overrides(self, project_jwks: ProjectJWKS) -> dict[str, Any]:
        return {
            "supabase_auth": "only",
            "supabase_auth_url": AUTH_URL,
            "supabase_jwks_url": project_jwks.url,
            "supabase_jwks_refetch_interval_seconds": REFETCH_INTERVAL,
        }

    async def test_a_key_rotated_in_is_accepted_after_one_read(
        self, client: Client, db: Database, project_jwks: ProjectJWKS
    ) -> None:
        user = await signed_up(db)
        assert project_jwks.hits == 1  # read before serving
        project_jwks.keys = [jwk(RSA_KEY, KID), jwk(NEW_RSA_KEY, NEW_KID)]
        await asyncio.sleep(REFETCH_INTERVAL + 0.1)
        rotated = gotrue_token(user, secret=NEW_RSA_KEY, algorithm="RS256", kid=NEW_KID)
        status, body = await me(client, rotated)
        assert status == 200 and body["id"] == str(user)
        assert project_jwks.hits == 2
        # Both keys are cached now: neither token reads the set again.
        old = gotrue_token(user, secret=RSA_KEY, algorithm="RS256")
        assert (await me(client, old))[0] == 200 and (await me(client, rotated))[0] == 200
        assert project_jwks.hits == 2

    async def test_unknown_kids_read_the_set_at_most_once_per_interval(
        self, client: Client, db: Database, project_jwks: ProjectJWKS
    ) -> None:
        user = await signed_up(db)
        await asyncio.sleep(REFETCH_INTERVAL + 0.1)
        # 40 tokens with made-up key ids, signed by a key in no set, all at once.
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        tokens = [
            gotrue_token(user, secret=stranger, algorithm="RS256", kid=f"made-up-{n}") for n in range(40)
        ]
        started = time.monotonic()
        answers = await asyncio.gather(*(me(client, token) for token in tokens))
        elapsed = time.monotonic() - started
        # Refused exactly as a kid in no set was before key rotation was picked up.
        assert {(status, body["error"]["code"], body["error"]["message"]) for status, body in answers} == {
            (401, "invalid_token", "unknown key id")
        }
        # One read before serving, one for the first unknown kid, then at most one per interval.
        assert 2 <= project_jwks.hits <= 2 + int(elapsed / REFETCH_INTERVAL)
        # A token signed by the project's key still passes, from the cache.
        hits = project_jwks.hits
        assert (await me(client, gotrue_token(user, secret=RSA_KEY, algorithm="RS256")))[0] == 200
        assert project_jwks.hits == hits

    async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(
        self, client: Client, db: Database, project_jwks: ProjectJWKS
    ) -> None:
        user = await signed_up(db)
        forged = gotrue_token(user, secret=NEW_RSA_KEY, algorithm="RS256", kid=KID)
        status, body = await me(client, forged)
        assert (status, body["error"]["message"]) == (401, "bad signature")
        assert project_jwks.hits == 1


class TestMaxAge:
    """Max age half a second, refetch interval an hour: only the age makes the service read again."""

    @pytest.fixture
    def settings_overrides(self, project_jwks: ProjectJWKS) -> dict[str, Any]:
        return {
            "supabase_auth": "only",
            "supabase_auth_url": AUTH_URL,
            "supabase_jwks_url": project_jwks.url,
            "supabase_jwks_max_age_seconds": 0.5,
            "supabase_jwks_refetch_interval_seconds": 3600,
        }

    async def test_the_set_is_read_again_once_it_is_older_than_the_max_age(
        self, client: Client, db: Database, project_jwks: ProjectJWKS
    ) -> None:
        user = await signed_up(db)
        old = gotrue_token(user, secret=RSA_KEY, algorithm="RS256")
        rotated = gotrue_token(user, secret=NEW_RSA_KEY, algorithm="RS256", kid=NEW_KID)
        project_jwks.keys = [jwk(NEW_RSA_KEY, NEW_KID)]  # the old key retired
        await asyncio.sleep(0.6)
        status, body = await me(client, old)
        assert (status, body["error"]["message"]) == (401, "unknown key id")
        assert (await me(client, rotated))[0] == 200
        assert project_jwks.hits == 2

    async def test_an_unreadable_set_is_502_not_401(
        self, client: Client, db: Database, project_jwks: ProjectJWKS
    ) -> None:
        user = await signed_up(db)
        project_jwks.failing = True
        await asyncio.sleep(0.6)
        status, body = await me(client, gotrue_token(user, secret=RSA_KEY, algorithm="RS256"))
        assert (status, body["error"]["code"]) == (502, "provider_unavailable")
        project_jwks.failing = False
        assert (await me(client, gotrue_token(user, secret=RSA_KEY, algorithm="RS256")))[0] == 200
