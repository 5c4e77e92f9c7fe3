"""GET /v1/me: the caller's own profile, read through RLS, JWT verified."""

import time
import uuid

import jwt
import pytest
from quart.typing import TestClientProtocol as Client

from tests.helpers import new_profile
from tests.service.conftest import JWT_SECRET, make_token
from xpbase.db import Database


async def test_me_returns_own_profile(client: Client, db: Database) -> None:
    """A valid token returns the caller's profile with XP, level and tier."""
    pid = await new_profile(db, "Ada")
    await db.rpc("award_xp", profile_id=pid, activity="challenge_completed", idempotency_key="c1", amount=200)
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {make_token(sub=str(pid))}"})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["id"] == str(pid)
    assert body["display_name"] == "Ada"
    assert (body["xp"], body["level"], body["tier"]) == (200, 2, "basic")


async def test_me_for_token_without_profile_is_404(client: Client) -> None:
    """A valid token whose subject has no profile gets 404 unknown_profile."""
    token = make_token(sub=str(uuid.uuid4()))
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "unknown_profile"


def _none_token(sub: str) -> str:
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    now = int(time.time())
    payload = jwt.utils.base64url_encode(
        f'{{"sub":"{sub}","aud":"authenticated","role":"authenticated","exp":{now + 600}}}'.encode()
    ).decode()
    return f"{header}.{payload}."


def _tampered(sub: str, other: str) -> str:
    token = make_token(sub=sub)
    header, payload, signature = token.split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(sub.encode(), other.encode())
    ).decode()
    return f"{header}.{forged}.{signature}"


BAD_TOKENS = {
    "expired": lambda sub: make_token(sub=sub, exp=int(time.time()) - 10),
    "wrong_audience": lambda sub: make_token(sub=sub, aud="anon-app"),
    "wrong_key": lambda sub: make_token(secret="another-secret-that-is-also-long-enough-0000", sub=sub),
    "alg_none": _none_token,
    "tampered": lambda sub: _tampered(sub, str(uuid.uuid4())),
    "missing_sub": lambda sub: make_token(sub=None),
    "not_yet_valid": lambda sub: make_token(sub=sub, nbf=int(time.time()) + 300),
    "no_exp": lambda sub: make_token(sub=sub, exp=None),
    "service_role": lambda sub: make_token(sub=sub, role="service_role"),
    "garbage": lambda sub: "not-a-jwt",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
async def test_me_rejects_bad_token(kind: str, client: Client, db: Database) -> None:
    """Expired, wrong-audience, wrong-key, alg none, tampered and other bad tokens get 401 invalid_token."""
    pid = await new_profile(db, "Eve")
    token = BAD_TOKENS[kind](str(pid))
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    body = await response.get_json()
    assert body["error"]["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_me_without_header_is_401(client: Client) -> None:
    """No Authorization header: 401 with the same error shape."""
    response = await client.get("/v1/me")
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "invalid_token"


def test_short_secret_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A configured JWT secret shorter than 32 bytes is refused at start-up."""
    from service.app import create_app
    from service.lib.access import SettingsError
    from xpbase.settings import Settings

    with pytest.raises(SettingsError):
        create_app(Settings(jwt_secret="short", data_dir=tmp_path))
    assert JWT_SECRET
