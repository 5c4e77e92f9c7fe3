"""Sign-in with Discord, GitHub and Google against local stand-ins that speak their real APIs."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.app import create_app
from tests.service import flows
from tests.service.conftest import JWT_SECRET, REDIRECT_URI, SPA_REDIRECT_URI, oauth_settings
from tests.service.standins import CLIENTS, StandIns
from xpbase.db import Database
from xpbase.settings import Settings


@pytest.fixture
def settings_overrides(oauth: StandIns) -> dict[str, Any]:
    return oauth_settings(oauth)


async def _identities(db: Database, profile_id: str) -> list[tuple[str, str, str | None]]:
    async with db.as_service() as conn:
        rows = await conn.fetch(
            "select provider, subject, display_name from public.identities"
            " where profile_id = $1 order by provider",
            profile_id,
        )
    return [(r["provider"], r["subject"], r["display_name"]) for r in rows]


async def _state_rows(db: Database) -> int:
    async with db.pool.acquire() as conn:
        return int(await conn.fetchval("select count(*) from private.oauth_states"))


def _bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


# Full flows ---------------------------------------------------------------------


async def test_discord_sign_in_makes_profile_with_name_and_avatar(
    client: Client, oauth: StandIns, db: Database
) -> None:
    """A first Discord sign-in makes the profile from global_name and the CDN avatar; answers a session."""
    body = await flows.sign_in(client, oauth, "discord", flows.DISCORD_ADA)
    assert body["created"] is True
    assert body["token_type"] == "bearer" and body["transport"] == "body"
    assert body["expires_in"] == 3600
    assert body["user"]["display_name"] == "Ada Lovelace"
    assert body["user"]["avatar_url"] == (
        "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"
    )
    me = await client.get("/v1/me", headers=_bearer(body))
    assert me.status_code == 200
    assert (await me.get_json())["id"] == body["user"]["id"]
    assert await _identities(db, body["user"]["id"]) == [("discord", "80351110224678912", "Ada Lovelace")]


async def test_github_sign_in_keys_on_numeric_id(client: Client, oauth: StandIns, db: Database) -> None:
    """GitHub identities are keyed on the numeric id (logins change); the name falls back to the login."""
    body = await flows.sign_in(client, oauth, "github", {**flows.GITHUB_GRACE, "name": None})
    assert body["user"]["display_name"] == "grace"
    assert body["user"]["avatar_url"] == flows.GITHUB_GRACE["avatar_url"]
    assert await _identities(db, body["user"]["id"]) == [("github", "1000001", "grace")]


async def test_google_sign_in_reads_the_verified_id_token(
    client: Client, oauth: StandIns, db: Database
) -> None:
    """Google's identity is the id_token's sub, name and picture."""
    body = await flows.sign_in(client, oauth, "google", flows.GOOGLE_ALAN)
    assert body["user"]["display_name"] == "Alan Turing"
    assert body["user"]["avatar_url"] == flows.GOOGLE_ALAN["picture"]
    assert await _identities(db, body["user"]["id"]) == [("google", "110169484474386276334", "Alan Turing")]


async def test_second_sign_in_finds_the_same_profile_and_keeps_its_name(
    client: Client, oauth: StandIns
) -> None:
    """Signing in again returns the same profile; a renamed provider account does not rename the profile."""
    first = await flows.sign_in(client, oauth, "discord", flows.DISCORD_ADA)
    second = await flows.sign_in(client, oauth, "discord", {**flows.DISCORD_ADA, "global_name": "Countess"})
    assert second["user"]["id"] == first["user"]["id"]
    assert second["created"] is False
    assert second["user"]["display_name"] == "Ada Lovelace"
    assert second["session_id"] != first["session_id"]


async def test_avatar_that_is_not_https_is_left_out(client: Client, oauth: StandIns) -> None:
    """A provider picture that is not an https URL does not become the avatar (profiles accept https only)."""
    body = await flows.sign_in(
        client, oauth, "google", {**flows.GOOGLE_ALAN, "picture": "http://example.test/a.png"}
    )
    assert body["user"]["avatar_url"] is None


async def test_authorize_redirects_with_pkce_and_binds_the_browser(client: Client, oauth: StandIns) -> None:
    """Without mode=json: 302 to the provider with state, S256 challenge and the exact redirect_uri."""
    response = await client.get(
        "/v1/auth/discord/authorize",
        query_string={"redirect_uri": REDIRECT_URI},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == f"{oauth.base_url}/discord/oauth2/authorize"
    )
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENTS["discord"][0]
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43 and query["scope"] == "identify"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Secure-xpbase-oauth-browser=")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/v1/auth/", "Max-Age=600"):
        assert attribute in cookie
    assert response.headers["Cache-Control"] == "no-store"


async def test_authorize_answers_json_for_clients_that_accept_only_json(client: Client) -> None:
    """A client that accepts application/json gets {"url", "expires_at"} instead of a redirect."""
    response = await client.get(
        "/v1/auth/github/authorize",
        query_string={"redirect_uri": SPA_REDIRECT_URI},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200
    body = await response.get_json()
    assert "code_challenge=" in body["url"] and body["expires_at"]


async def test_google_authorize_sends_a_nonce(client: Client) -> None:
    """Google's authorize URL carries the OIDC scopes and a nonce."""
    body = await (await flows.authorize(client, "google")).get_json()
    query = parse_qs(urlsplit(body["url"]).query)
    assert query["scope"] == ["openid profile"]
    assert len(query["nonce"][0]) >= 16


async def test_unknown_or_unconfigured_provider_is_404(client: Client) -> None:
    """A provider that is not configured is 404 unknown_provider."""
    response = await flows.authorize(client, "myspace")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "unknown_provider"


# Redirect URIs --------------------------------------------------------------------

REDIRECT_VARIANTS = {
    "trailing_slash": REDIRECT_URI + "/",
    "host_case": REDIRECT_URI.replace("app.example.test", "APP.example.test"),
    "path_case": REDIRECT_URI.replace("/auth/callback", "/Auth/Callback"),
    "extra_query": REDIRECT_URI + "?next=/admin",
    "fragment": REDIRECT_URI + "#x",
    "other_port": REDIRECT_URI.replace("app.example.test", "app.example.test:8443"),
    "http": REDIRECT_URI.replace("https://", "http://"),
    "other_host": REDIRECT_URI.replace("app.example.test", "app.example.test.evil.test"),
    "userinfo": REDIRECT_URI.replace("https://", "https://app.example.test@"),
    "spa_other_port": SPA_REDIRECT_URI.replace("5173", "5174"),
    "empty": "",
}


@pytest.mark.parametrize("variant", sorted(REDIRECT_VARIANTS))
async def test_redirect_uri_must_match_the_allow_list_exactly(
    variant: str, client: Client, db: Database
) -> None:
    """Trailing slash, case, extra query, fragment, other port, http, other host: 400 invalid_redirect_uri."""
    response = await flows.authorize(client, "discord", redirect_uri=REDIRECT_VARIANTS[variant])
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_redirect_uri"
    assert await _state_rows(db) == 0


async def test_redirect_uri_is_required_when_several_are_allowed(client: Client) -> None:
    """With two allowed redirect URIs, authorize must name one."""
    response = await flows.authorize(client, "discord", redirect_uri=None)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_redirect_uri"


async def test_redirect_uri_defaults_to_the_only_allowed_one(
    oauth: StandIns, db: Database, tmp_path: Any
) -> None:
    """With exactly one allowed redirect URI, authorize may leave it out."""
    single = create_app(
        Settings(
            **{
                **oauth_settings(oauth),
                "oauth_redirect_uris": [SPA_REDIRECT_URI],
                "jwt_secret": JWT_SECRET,
                "data_dir": tmp_path,
            }
        ),
        database=db,
    )
    async with single.test_app():
        response = await flows.authorize(single.test_client(), "discord", redirect_uri=None)
    assert response.status_code == 200
    assert parse_qs(urlsplit((await response.get_json())["url"]).query)["redirect_uri"] == [SPA_REDIRECT_URI]


async def test_sign_in_is_unavailable_without_an_allow_list(
    db: Database, oauth: StandIns, tmp_path: Any
) -> None:
    """No XPBASE_OAUTH_REDIRECT_URIS: authorize is 503 sign_in_not_configured."""
    bare = create_app(
        Settings(**{**oauth.settings(), "jwt_secret": JWT_SECRET, "data_dir": tmp_path}), database=db
    )
    async with bare.test_app():
        response = await flows.authorize(bare.test_client(), "discord", redirect_uri=None)
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "sign_in_not_configured"


def test_allow_list_refuses_plain_http_for_public_hosts() -> None:
    """http redirect URIs are allowed for loopback only; fragments never."""
    assert Settings(
        oauth_redirect_uris="http://127.0.0.1:3000/cb, https://a.test/cb"
    ).oauth_redirect_uris == ["http://127.0.0.1:3000/cb", "https://a.test/cb"]
    for bad in ("http://a.test/cb", "https://a.test/cb#f", "ftp://a.test/cb", "/relative"):
        with pytest.raises(ValidationError):
            Settings(oauth_redirect_uris=bad)


# State and code -------------------------------------------------------------------


def _rejected_state(body: dict[str, Any]) -> bool:
    return bool(body["error"]["code"] == "invalid_state")


async def test_tampered_state_is_rejected_and_the_real_one_still_works(
    client: Client, oauth: StandIns
) -> None:
    """A state with one character changed is unknown; the genuine one is untouched and still completes."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    tampered = back.state[:-1] + ("A" if back.state[-1] != "A" else "B")
    response = await flows.callback(client, "discord", back, state=tampered)
    assert response.status_code == 400 and _rejected_state(await response.get_json())
    assert (await flows.callback(client, "discord", back)).status_code == 200


async def test_missing_state_is_rejected(client: Client, oauth: StandIns) -> None:
    """A callback without state is 400 invalid_state."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    response = await client.get("/v1/auth/discord/callback", query_string={"code": back.code})
    assert response.status_code == 400 and _rejected_state(await response.get_json())


async def test_replayed_callback_is_rejected(client: Client, oauth: StandIns) -> None:
    """The same code and state a second time: the state is spent, 400 invalid_state."""
    back = await flows.start(client, oauth, "github", flows.GITHUB_GRACE)
    assert (await flows.callback(client, "github", back)).status_code == 200
    replay = await flows.callback(client, "github", back)
    assert replay.status_code == 400 and _rejected_state(await replay.get_json())


async def test_replayed_code_under_a_fresh_state_is_rejected(client: Client, oauth: StandIns) -> None:
    """A spent code with a new state: the provider refuses it (single use, PKCE), 400 invalid_grant."""
    first = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    assert (await flows.callback(client, "discord", first)).status_code == 200
    second = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    response = await flows.callback(client, "discord", second, code=first.code)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_grant"


async def test_stolen_code_with_attackers_own_state_fails_pkce(
    client: Client, oauth: StandIns, app: Quart
) -> None:
    """An attacker's browser with its own state cannot use the victim's unspent code: the verifier differs."""
    victim = await flows.start(client, oauth, "google", flows.GOOGLE_ALAN)
    attacker = app.test_client()
    own = await flows.start(attacker, oauth, "google", flows.GOOGLE_ALAN)
    response = await flows.callback(attacker, "google", own, code=victim.code)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_grant"
    assert {"provider": "google"}.items() <= oauth.token_requests[-1].items()


async def test_state_from_another_browser_is_rejected_and_spent(
    client: Client, oauth: StandIns, app: Quart
) -> None:
    """A callback without the browser cookie that started the flow fails, and spends the state."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    other_browser = app.test_client()
    response = await flows.callback(other_browser, "discord", back)
    assert response.status_code == 400 and _rejected_state(await response.get_json())
    assert (await flows.callback(client, "discord", back)).status_code == 400


async def test_state_for_another_provider_is_rejected(client: Client, oauth: StandIns) -> None:
    """A Discord state presented at the GitHub callback is 400 invalid_state."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    response = await flows.callback(client, "github", back)
    assert response.status_code == 400 and _rejected_state(await response.get_json())


async def test_expired_state_is_rejected(client: Client, oauth: StandIns, db: Database) -> None:
    """A state older than XPBASE_OAUTH_STATE_TTL_SECONDS is 400 invalid_state."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    async with db.pool.acquire() as conn:
        await conn.execute(
            "update private.oauth_states set created_at = now() - interval '11 minutes', "
            "expires_at = now() - interval '1 minute'"
        )
    response = await flows.callback(client, "discord", back)
    assert response.status_code == 400 and _rejected_state(await response.get_json())


async def test_states_are_stored_hashed(client: Client, oauth: StandIns, db: Database) -> None:
    """Neither the state nor the browser nonce is stored in the clear."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA)
    async with db.pool.acquire() as conn:
        row = await conn.fetchrow("select state_hash, browser_hash from private.oauth_states")
    assert row["state_hash"] == hashlib.sha256(back.state.encode()).digest()
    assert back.state.encode() not in (row["state_hash"], row["browser_hash"])


async def test_declined_consent_is_access_denied(client: Client, oauth: StandIns) -> None:
    """The member says no at the provider: 400 access_denied (and the state is spent)."""
    back = await flows.start(client, oauth, "discord", None)
    assert back.params["error"] == "access_denied"
    response = await flows.callback(client, "discord", back)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "access_denied"


async def test_provider_outage_is_502(client: Client, oauth: StandIns) -> None:
    """A token endpoint answering 503 is 502 provider_unavailable."""
    back = await flows.start(client, oauth, "github", flows.GITHUB_GRACE)
    oauth.fail_token_endpoint = 503
    response = await flows.callback(client, "github", back)
    assert response.status_code == 502
    assert (await response.get_json())["error"]["code"] == "provider_unavailable"


async def test_wrong_client_secret_is_the_operators_problem(
    db: Database, oauth: StandIns, tmp_path: Any
) -> None:
    """A provider refusing our client credentials is 502 provider_misconfigured, not the member's fault."""
    settings = Settings(
        **{
            **oauth_settings(oauth),
            "github_client_secret": "rotated-away",
            "jwt_secret": JWT_SECRET,
            "data_dir": tmp_path,
        }
    )
    misconfigured = create_app(settings, database=db)
    async with misconfigured.test_app():
        browser = misconfigured.test_client()
        back = await flows.start(browser, oauth, "github", flows.GITHUB_GRACE)
        response = await flows.callback(browser, "github", back)
    assert response.status_code == 502
    assert (await response.get_json())["error"]["code"] == "provider_misconfigured"


ID_TOKEN_TAMPERING: dict[str, dict[str, Any]] = {
    "wrong_nonce": {"nonce": "a-nonce-we-never-sent-0123456789"},
    "no_nonce": {"nonce": None},
    "wrong_audience": {"aud": "someone-else.apps.googleusercontent.com", "azp": None},
    "wrong_issuer": {"iss": "https://accounts.evil.test"},
    "expired": {"exp": 1_600_000_000, "iat": 1_599_990_000},
    "other_key": {},
}


@pytest.mark.parametrize("kind", sorted(ID_TOKEN_TAMPERING))
async def test_google_id_token_must_verify(kind: str, client: Client, oauth: StandIns, db: Database) -> None:
    """Wrong nonce, audience or issuer, expired, or signed by another key: 400 invalid_grant, no profile."""
    back = await flows.start(client, oauth, "google", flows.GOOGLE_ALAN)
    oauth.id_token_overrides.update(ID_TOKEN_TAMPERING[kind])
    if kind == "other_key":
        oauth.id_token_key = rsa.generate_private_key(65537, 2048)
    response = await flows.callback(client, "google", back)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_grant"
    async with db.pool.acquire() as conn:
        assert await conn.fetchval("select count(*) from public.identities where provider = 'google'") == 0


async def test_google_key_rotation_is_picked_up(client: Client, oauth: StandIns) -> None:
    """An id_token signed with a key that appeared after the JWKS was cached: the JWKS is fetched again."""
    await flows.sign_in(client, oauth, "google", flows.GOOGLE_ALAN)
    original = (oauth.google_key, oauth.google_kid)
    try:
        oauth.google_key, oauth.google_kid = rsa.generate_private_key(65537, 2048), "standin-google-2"
        body = await flows.sign_in(client, oauth, "google", flows.GOOGLE_ALAN)
        assert body["created"] is False
    finally:
        oauth.google_key, oauth.google_kid = original


async def test_google_id_token_with_an_unpublished_kid_is_refused(client: Client, oauth: StandIns) -> None:
    """A kid that is not in the JWKS even after fetching it again: 400 invalid_grant."""
    back = await flows.start(client, oauth, "google", flows.GOOGLE_ALAN)
    oauth.id_token_key, oauth.id_token_kid = rsa.generate_private_key(65537, 2048), "not-published"
    response = await flows.callback(client, "google", back)
    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "invalid_grant"


# Cookie mode ----------------------------------------------------------------------


async def test_cookie_mode_puts_tokens_in_httponly_cookies(client: Client, oauth: StandIns) -> None:
    """cookie=1 answers the session without tokens in the body and sets HttpOnly, Secure, SameSite cookies."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA, cookie=1)
    response = await flows.callback(client, "discord", back)
    assert response.status_code == 200
    body = await response.get_json()
    assert body["transport"] == "cookie"
    assert body["access_token"] is None and body["refresh_token"] is None
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    access = cookies["__Host-xpbase-access-token"]
    refresh = cookies["__Secure-xpbase-refresh-token"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax"):
        assert attribute in access and attribute in refresh
    assert "Path=/;" in access or access.endswith("Path=/")
    assert "Path=/v1/auth/" in refresh
    assert "Max-Age=3600" in access


async def test_cookie_mode_can_be_chosen_at_the_callback(client: Client, oauth: StandIns) -> None:
    """cookie=1 on the callback alone also selects cookie mode."""
    back = await flows.start(client, oauth, "github", flows.GITHUB_GRACE)
    response = await flows.callback(client, "github", back, cookie=1)
    assert (await response.get_json())["transport"] == "cookie"


async def test_me_accepts_the_access_cookie(client: Client, oauth: StandIns, app: Quart) -> None:
    """/v1/me works with only the access cookie; a browser without it gets 401."""
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA, cookie=1)
    body = await (await flows.callback(client, "discord", back)).get_json()
    me = await client.get("/v1/me")
    assert me.status_code == 200
    assert (await me.get_json())["id"] == body["user"]["id"]
    assert (await app.test_client().get("/v1/me")).status_code == 401


async def test_samesite_setting_applies_to_every_cookie(db: Database, oauth: StandIns, tmp_path: Any) -> None:
    """XPBASE_AUTH_COOKIE_SAMESITE=strict is what the cookies carry."""
    strict = create_app(
        Settings(
            **{
                **oauth_settings(oauth),
                "auth_cookie_samesite": "strict",
                "jwt_secret": JWT_SECRET,
                "data_dir": tmp_path,
            }
        ),
        database=db,
    )
    async with strict.test_app():
        browser = strict.test_client()
        back = await flows.start(browser, oauth, "discord", flows.DISCORD_ADA, cookie=1)
        response = await flows.callback(browser, "discord", back)
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 2 and all("SameSite=Strict" in c for c in cookies)


# Linking a second provider ------------------------------------------------------------


async def test_signed_in_member_links_a_second_provider(
    client: Client, oauth: StandIns, db: Database
) -> None:
    """link=1 with an access token attaches the account; signing in with it later finds the same profile."""
    grace = await flows.sign_in(client, oauth, "github", flows.GITHUB_GRACE)
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA, link=1, headers=_bearer(grace))
    response = await flows.callback(client, "discord", back)
    assert response.status_code == 201
    linked = await response.get_json()
    assert linked["provider"] == "discord" and linked["subject"] == flows.DISCORD_ADA["id"]
    assert linked["already_linked"] is False
    assert linked["user"]["id"] == grace["user"]["id"]
    assert [p for p, _, _ in await _identities(db, grace["user"]["id"])] == ["discord", "github"]
    again = await flows.sign_in(client, oauth, "discord", flows.DISCORD_ADA)
    assert again["user"]["id"] == grace["user"]["id"] and again["created"] is False


async def test_linking_works_with_the_access_cookie(client: Client, oauth: StandIns) -> None:
    """A cookie-mode member can start linking by plain navigation (the access cookie authenticates)."""
    back = await flows.start(client, oauth, "github", flows.GITHUB_GRACE, cookie=1)
    signed_in = await (await flows.callback(client, "github", back)).get_json()
    link = await flows.start(client, oauth, "google", flows.GOOGLE_ALAN, link=1)
    response = await flows.callback(client, "google", link)
    assert response.status_code == 201
    assert (await response.get_json())["user"]["id"] == signed_in["user"]["id"]


async def test_linking_an_account_that_has_its_own_profile_is_409(client: Client, oauth: StandIns) -> None:
    """An identity already on another profile cannot be linked: 409 identity_linked_elsewhere."""
    await flows.sign_in(client, oauth, "discord", flows.DISCORD_ADA)
    grace = await flows.sign_in(client, oauth, "github", flows.GITHUB_GRACE)
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA, link=1, headers=_bearer(grace))
    response = await flows.callback(client, "discord", back)
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "identity_linked_elsewhere"


async def test_linking_a_second_account_of_the_same_provider_is_409(client: Client, oauth: StandIns) -> None:
    """A profile keeps one account per provider: 409 provider_already_linked."""
    ada = await flows.sign_in(client, oauth, "discord", flows.DISCORD_ADA)
    other = {**flows.DISCORD_ADA, "id": "80351110224678913", "global_name": "Ada's alt"}
    back = await flows.start(client, oauth, "discord", other, link=1, headers=_bearer(ada))
    response = await flows.callback(client, "discord", back)
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "provider_already_linked"


async def test_relinking_the_same_account_is_harmless(client: Client, oauth: StandIns) -> None:
    """Linking the account a profile signed in with answers already_linked."""
    ada = await flows.sign_in(client, oauth, "discord", flows.DISCORD_ADA)
    back = await flows.start(client, oauth, "discord", flows.DISCORD_ADA, link=1, headers=_bearer(ada))
    response = await flows.callback(client, "discord", back)
    assert response.status_code == 201
    assert (await response.get_json())["already_linked"] is True


async def test_linking_needs_a_valid_access_token(client: Client, oauth: StandIns) -> None:
    """link=1 without a token, or with a bad one, is 401 and remembers no state."""
    response = await flows.authorize(client, "discord", link=1)
    assert response.status_code == 401
    bad = await flows.authorize(client, "discord", link=1, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    assert (await bad.get_json())["error"]["code"] == "invalid_token"
