"""Refresh tokens: rotation, reuse detection with a grace window, concurrency, logout, cookie transport."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import jwt
import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.app import create_app
from service.lib.auth_sessions import IssuedSession, start_session
from tests.helpers import new_profile
from tests.service import flows
from tests.service.conftest import APP_ORIGIN, JWT_SECRET, oauth_settings
from tests.service.standins import StandIns
from xpbase.db import Database
from xpbase.rpc import PostgresRPC
from xpbase.settings import Settings


@pytest.fixture
def settings_overrides(oauth: StandIns) -> dict[str, Any]:
    return oauth_settings(oauth)


async def _session(app: Quart, db: Database, name: str = "Ada") -> IssuedSession:
    pid = await new_profile(db, name)
    return await start_session(
        PostgresRPC(db), app.config["XPBASE_TOKEN_KEYS"], app.config["XPBASE_SETTINGS"], pid, "discord"
    )


async def _refresh(client: Client, token: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/auth/refresh", json={"refresh_token": token})
    return response.status_code, await response.get_json()


async def _live_tokens(db: Database, session_id: UUID | str) -> list[bytes]:
    """Hashes of the unspent tokens of a session that is not revoked."""
    async with db.pool.acquire() as conn:
        rows = await conn.fetch(
            """
            select t.token_hash from private.refresh_tokens t
              join private.auth_sessions s on s.id = t.session_id
             where s.id = $1 and s.revoked_at is null and t.used_at is null and t.expires_at > now()
            """,
            UUID(str(session_id)),
        )
    return [r["token_hash"] for r in rows]


async def _age_spent_tokens(db: Database, seconds: int) -> None:
    """Pretend every spent token was spent ``seconds`` earlier (instead of waiting out the grace window)."""
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update private.refresh_tokens set used_at = used_at - make_interval(secs => $1)"
            " where used_at is not null",
            seconds,
        )


def _sha(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# Rotation ------------------------------------------------------------------------------


async def test_refresh_rotates_the_refresh_token(app: Quart, client: Client, db: Database) -> None:
    """A refresh answers a new access token and a new refresh token for the same session."""
    session = await _session(app, db)
    status, body = await _refresh(client, session.refresh_token)
    assert status == 200
    assert body["refresh_token"] != session.refresh_token
    assert body["session_id"] == str(session.session_id) and body["transport"] == "body"
    assert body["user"]["display_name"] == "Ada" and body["created"] is None
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert await _live_tokens(db, session.session_id) == [_sha(body["refresh_token"])]


async def test_refresh_tokens_are_stored_only_as_hashes(app: Quart, db: Database) -> None:
    """The database holds sha256 of each refresh token, never the token."""
    session = await _session(app, db)
    async with db.pool.acquire() as conn:
        stored = await conn.fetchval("select token_hash from private.refresh_tokens")
        as_text = await conn.fetchval(
            "select count(*) from private.refresh_tokens where position($1 in encode("
            "token_hash, 'escape')) > 0",
            session.refresh_token,
        )
    assert stored == _sha(session.refresh_token)
    assert as_text == 0


async def test_refresh_reads_the_role_again(app: Quart, client: Client, db: Database) -> None:
    """A promotion to admin shows in app_metadata.role at the next refresh."""
    session = await _session(app, db)
    async with db.as_service() as conn:
        await conn.execute("update public.profiles set role = 'admin' where id = $1", session.user.id)
    _, body = await _refresh(client, session.refresh_token)
    claims = jwt.decode(body["access_token"], JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    assert claims["app_metadata"]["role"] == "admin" and body["user"]["role"] == "admin"


# Reuse -----------------------------------------------------------------------------------


async def test_parent_again_within_the_grace_window_gets_the_live_token(
    app: Quart, client: Client, db: Database
) -> None:
    """The immediate parent presented again within the grace window answers the same live refresh token."""
    session = await _session(app, db)
    _, first = await _refresh(client, session.refresh_token)
    status, again = await _refresh(client, session.refresh_token)
    assert status == 200
    assert again["refresh_token"] == first["refresh_token"]
    assert await _live_tokens(db, session.session_id) == [_sha(first["refresh_token"])]
    assert (await _refresh(client, first["refresh_token"]))[0] == 200


async def test_reuse_after_the_grace_window_revokes_the_whole_family(
    app: Quart, client: Client, db: Database
) -> None:
    """A spent token after the grace window: 401 refresh_token_reused; the live token dies too."""
    session = await _session(app, db)
    _, first = await _refresh(client, session.refresh_token)
    await _age_spent_tokens(db, 11)
    status, body = await _refresh(client, session.refresh_token)
    assert status == 401 and body["error"]["code"] == "refresh_token_reused"
    status, body = await _refresh(client, first["refresh_token"])
    assert status == 401 and body["error"]["code"] == "session_revoked"
    assert await _live_tokens(db, session.session_id) == []


async def test_reuse_of_an_older_ancestor_revokes_even_within_the_grace_window(
    app: Quart, client: Client, db: Database
) -> None:
    """Only the immediate parent of the live token has a grace window; a grandparent is reuse."""
    session = await _session(app, db)
    _, first = await _refresh(client, session.refresh_token)
    _, second = await _refresh(client, first["refresh_token"])
    status, body = await _refresh(client, session.refresh_token)
    assert status == 401 and body["error"]["code"] == "refresh_token_reused"
    assert (await _refresh(client, second["refresh_token"]))[1]["error"]["code"] == "session_revoked"


async def test_reuse_does_not_touch_other_sessions(app: Quart, client: Client, db: Database) -> None:
    """Revoking one family leaves the member's other sessions alive."""
    session = await _session(app, db)
    other = await start_session(
        PostgresRPC(db), app.config["XPBASE_TOKEN_KEYS"], app.config["XPBASE_SETTINGS"], session.user.id
    )
    await _refresh(client, session.refresh_token)
    await _age_spent_tokens(db, 60)
    assert (await _refresh(client, session.refresh_token))[0] == 401
    assert (await _refresh(client, other.refresh_token))[0] == 200


async def test_fifty_concurrent_refreshes_of_one_token_leave_one_live_token(
    app: Quart, client: Client, db: Database
) -> None:
    """50 simultaneous refreshes of one token all get the same successor; exactly one token stays live."""
    session = await _session(app, db)
    results = await asyncio.gather(*(_refresh(client, session.refresh_token) for _ in range(50)))
    assert [status for status, _ in results] == [200] * 50
    successors = {body["refresh_token"] for _, body in results}
    assert len(successors) == 1
    (successor,) = successors
    assert await _live_tokens(db, session.session_id) == [_sha(successor)]
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from private.refresh_tokens") == 2
    assert (await _refresh(client, successor))[0] == 200


async def test_fifty_concurrent_refreshes_without_grace_have_one_winner(
    db: Database, oauth: StandIns, tmp_path: Path
) -> None:
    """With a zero grace window one refresh wins and the other 49 are reuse, which ends the session."""
    settings = Settings(
        **{
            **oauth_settings(oauth),
            "jwt_secret": JWT_SECRET,
            "data_dir": tmp_path,
            "refresh_token_reuse_grace_seconds": 0,
        }
    )
    application = create_app(settings, database=db)
    async with application.test_app():
        client = application.test_client()
        session = await _session(application, db)
        results = await asyncio.gather(*(_refresh(client, session.refresh_token) for _ in range(50)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [401] * 49
    codes = {body["error"]["code"] for status, body in results if status == 401}
    assert codes <= {"refresh_token_reused", "session_revoked"} and "refresh_token_reused" in codes
    assert await _live_tokens(db, session.session_id) == []


# Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["unknown-token-0123456789012345678901234567", "", "é" * 100])
async def test_unknown_refresh_token_is_401(token: str, client: Client) -> None:
    """Tokens never issued (or empty) are 401 invalid_refresh_token."""
    status, body = await _refresh(client, token)
    assert status == 401 and body["error"]["code"] == "invalid_refresh_token"


async def test_overlong_refresh_token_is_400(client: Client) -> None:
    """A refresh_token over 200 characters fails validation: 400 invalid_request."""
    status, body = await _refresh(client, "x" * 500)
    assert status == 400 and body["error"]["code"] == "invalid_request"


async def test_refresh_without_token_or_cookie_is_401(client: Client) -> None:
    """An empty body and no cookie is 401."""
    response = await client.post("/v1/auth/refresh")
    assert response.status_code == 401
    assert (await response.get_json())["error"]["code"] == "invalid_refresh_token"


async def test_refresh_body_must_be_a_json_object(client: Client) -> None:
    """A body that is not a JSON object is 400 invalid_request."""
    response = await client.post("/v1/auth/refresh", data="[1]", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


async def test_expired_refresh_token_is_401_and_ends_nothing(
    app: Quart, client: Client, db: Database
) -> None:
    """An expired refresh token is 401 refresh_token_expired; the session is not revoked for it."""
    session = await _session(app, db)
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update private.refresh_tokens set created_at = now() - interval '31 days', "
            "expires_at = now() - interval '1 day'"
        )
    status, body = await _refresh(client, session.refresh_token)
    assert status == 401 and body["error"]["code"] == "refresh_token_expired"
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select revoked_at from private.auth_sessions") is None


# Logout ------------------------------------------------------------------------------------


async def test_logout_revokes_the_family(app: Quart, client: Client, db: Database) -> None:
    """Logout with any token of the family ends the session: the live token no longer refreshes."""
    session = await _session(app, db)
    _, first = await _refresh(client, session.refresh_token)
    response = await client.post("/v1/auth/logout", json={"refresh_token": first["refresh_token"]})
    assert response.status_code == 204
    status, body = await _refresh(client, first["refresh_token"])
    assert status == 401 and body["error"]["code"] == "session_revoked"
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select revoked_reason from private.auth_sessions") == "logout"


async def test_logout_with_the_access_token_ends_its_session(
    app: Quart, client: Client, db: Database
) -> None:
    """Without a refresh token, the access token's session_id names the session."""
    session = await _session(app, db)
    response = await client.post(
        "/v1/auth/logout", headers={"Authorization": f"Bearer {session.access.token}"}
    )
    assert response.status_code == 204
    assert (await _refresh(client, session.refresh_token))[1]["error"]["code"] == "session_revoked"


async def test_global_logout_ends_every_session_of_the_member(
    app: Quart, client: Client, db: Database
) -> None:
    """scope=global revokes all the member's sessions and nobody else's."""
    session = await _session(app, db)
    keys, settings = app.config["XPBASE_TOKEN_KEYS"], app.config["XPBASE_SETTINGS"]
    laptop = await start_session(PostgresRPC(db), keys, settings, session.user.id)
    stranger = await _session(app, db, "Bob")
    response = await client.post(
        "/v1/auth/logout", json={"refresh_token": session.refresh_token, "scope": "global"}
    )
    assert response.status_code == 204
    assert (await _refresh(client, laptop.refresh_token))[0] == 401
    assert (await _refresh(client, stranger.refresh_token))[0] == 200


async def test_logout_twice_is_fine(app: Quart, client: Client, db: Database) -> None:
    """Logging out an ended session (or with an unknown token) is still 204."""
    session = await _session(app, db)
    for token in (session.refresh_token, session.refresh_token, "never-issued"):
        assert (await client.post("/v1/auth/logout", json={"refresh_token": token})).status_code == 204


async def test_logout_needs_something_that_names_a_session(client: Client) -> None:
    """No refresh token, no cookie and no access token: 401."""
    assert (await client.post("/v1/auth/logout")).status_code == 401
    bad_scope = await client.post("/v1/auth/logout", json={"refresh_token": "x", "scope": "everyone"})
    assert bad_scope.status_code == 400


# Cookie transport --------------------------------------------------------------------------


async def _cookie_sign_in(client: Client, oauth: StandIns) -> dict[str, Any]:
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA, cookie=1)
    return await (await flows.callback(client, "discord", back)).get_json()


def _cookie_value(response: Any, name: str) -> str | None:
    for header in response.headers.getlist("Set-Cookie"):
        match = re.match(rf"{re.escape(name)}=([^;]*)", header)
        if match:
            return match.group(1)
    return None


async def test_cookie_refresh_rotates_the_cookies(client: Client, oauth: StandIns, db: Database) -> None:
    """POST /v1/auth/refresh with the refresh cookie and a trusted Origin answers new cookies, not tokens."""
    signed_in = await _cookie_sign_in(client, oauth)
    response = await client.post("/v1/auth/refresh", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["transport"] == "cookie" and body["refresh_token"] is None
    refresh_cookie = _cookie_value(response, "__Secure-xpbase-refresh-token")
    assert refresh_cookie and await _live_tokens(db, signed_in["session_id"]) == [_sha(refresh_cookie)]
    assert _cookie_value(response, "__Host-xpbase-access-token")
    assert (await client.get("/v1/me")).status_code == 200


@pytest.mark.parametrize("origin", [None, "https://evil.test", "null", "https://app.example.test.evil.test"])
async def test_cookie_refresh_needs_a_trusted_origin(
    origin: str | None, client: Client, oauth: StandIns
) -> None:
    """A cookie-only refresh without a trusted Origin is 403 and spends nothing."""
    await _cookie_sign_in(client, oauth)
    response = await client.post("/v1/auth/refresh", headers={"Origin": origin} if origin else {})
    assert response.status_code == 403
    assert (await response.get_json())["error"]["code"] == "untrusted_origin"
    assert (await client.post("/v1/auth/refresh", headers={"Origin": APP_ORIGIN})).status_code == 200


async def test_cookie_logout_clears_the_cookies(client: Client, oauth: StandIns) -> None:
    """Logout by cookie ends the session and expires both cookies."""
    await _cookie_sign_in(client, oauth)
    response = await client.post("/v1/auth/logout", headers={"Origin": APP_ORIGIN})
    assert response.status_code == 204
    cleared = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    assert set(cleared) == {"__Host-xpbase-access-token", "__Secure-xpbase-refresh-token"}
    assert all("Max-Age=0" in c for c in cleared.values())
    assert (await client.get("/v1/me")).status_code == 401


async def test_cookie_authenticated_posts_need_a_trusted_origin(client: Client, oauth: StandIns) -> None:
    """An unsafe request authenticated only by the access cookie is 403 without a trusted Origin."""
    await _cookie_sign_in(client, oauth)
    refused = await client.post("/v1/auth/link-codes", headers={"Origin": "https://evil.test"})
    assert refused.status_code == 403
    allowed = await client.post("/v1/auth/link-codes", headers={"Origin": APP_ORIGIN})
    assert allowed.status_code == 201


# Link codes over HTTP -------------------------------------------------------------------------


async def test_link_code_route_creates_a_code(app: Quart, client: Client, db: Database) -> None:
    """POST /v1/auth/link-codes answers a one-time code as the caller; anonymous callers get 401."""
    session = await _session(app, db)
    response = await client.post(
        "/v1/auth/link-codes", headers={"Authorization": f"Bearer {session.access.token}"}
    )
    assert response.status_code == 201
    body = await response.get_json()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}", body["code"])
    assert body["ttl_seconds"] == 600
    assert (await client.post("/v1/auth/link-codes")).status_code == 401


async def test_openapi_lists_the_auth_routes(client: Client) -> None:
    """The OpenAPI document lists every sign-in route."""
    paths = (await (await client.get("/openapi.json")).get_json())["paths"]
    for path in (
        "/v1/auth/{provider}/authorize",
        "/v1/auth/{provider}/callback",
        "/v1/auth/refresh",
        "/v1/auth/logout",
        "/v1/auth/link-codes",
        "/.well-known/jwks.json",
    ):
        assert path in paths
