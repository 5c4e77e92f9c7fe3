"""Local stand-ins for Discord, GitHub and Google that speak their real OAuth 2.0 and user APIs.

One Quart app, served by Hypercorn on 127.0.0.1 (a random port) in a thread
of its own for the whole test session:

- Discord: ``GET /discord/oauth2/authorize``, ``POST /discord/api/oauth2/token``
  (client authentication with HTTP Basic), ``GET /discord/api/users/@me``.
- GitHub: ``GET /github/login/oauth/authorize``, ``POST
  /github/login/oauth/access_token`` (client credentials in the form body;
  errors as HTTP 200 with an ``error`` field, as GitHub does), ``GET
  /github/api/user`` (403 without a User-Agent, as GitHub does).
- Google: ``GET /google/.well-known/openid-configuration``, ``GET
  /google/o/oauth2/v2/auth``, ``POST /google/token`` (an ``id_token`` signed
  RS256 with the stand-in's key), ``GET /google/oauth2/v3/certs`` (its JWKS).

The authorize endpoints play the member who clicks "Authorize": they check the
client id, the registered redirect URI, ``response_type=code`` and the S256
``code_challenge``, then redirect to the redirect URI with a one-time code for
the account chosen with ``login_as``. The token endpoints check what the real
ones check: client credentials, a code that is unused and was issued to this
client for this redirect URI, and the PKCE ``code_verifier``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.hazmat.primitives.asymmetric import rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config
from joserfc.jwk import RSAKey
from quart import Quart, Response, jsonify, redirect, request

CLIENTS = {
    "discord": ("discord-client-id", "discord-client-secret"),
    "github": ("github-client-id", "github-client-secret"),
    "google": ("google-client-id.apps.googleusercontent.com", "google-client-secret"),
}


@dataclass
class Grant:
    """An authorization code the stand-in issued."""

    provider: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    user: dict[str, Any]
    used: bool = False


@dataclass
class StandIns:
    """The running stand-ins: their base URL, the accounts that will consent, and what they issued."""

    base_url: str = ""
    redirect_uris: tuple[str, ...] = ()
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    access_tokens: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    google_key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    google_kid: str = "standin-google-1"
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    id_token_key: rsa.RSAPrivateKey | None = None
    id_token_kid: str | None = None
    fail_token_endpoint: int | None = None
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def login_as(self, provider: str, account: dict[str, Any]) -> None:
        """The account that consents at ``provider``'s authorize page from now on."""
        self.accounts[provider] = account

    def reset(self) -> None:
        """Forget per-test choices (accounts, tampering, failures); issued codes stay spent."""
        self.accounts.clear()
        self.id_token_overrides.clear()
        self.id_token_key = None
        self.id_token_kid = None
        self.fail_token_endpoint = None
        self.token_requests.clear()

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/google"

    def settings(self) -> dict[str, Any]:
        """xpbase settings that point the three providers at the stand-ins."""
        return {
            "discord_client_id": CLIENTS["discord"][0],
            "discord_client_secret": CLIENTS["discord"][1],
            "discord_authorize_url": f"{self.base_url}/discord/oauth2/authorize",
            "discord_token_url": f"{self.base_url}/discord/api/oauth2/token",
            "discord_userinfo_url": f"{self.base_url}/discord/api/users/@me",
            "github_client_id": CLIENTS["github"][0],
            "github_client_secret": CLIENTS["github"][1],
            "github_authorize_url": f"{self.base_url}/github/login/oauth/authorize",
            "github_token_url": f"{self.base_url}/github/login/oauth/access_token",
            "github_userinfo_url": f"{self.base_url}/github/api/user",
            "google_client_id": CLIENTS["google"][0],
            "google_client_secret": CLIENTS["google"][1],
            "google_discovery_url": f"{self.base_url}/google/.well-known/openid-configuration",
        }


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    return response


def build_app(state: StandIns) -> Quart:
    """The stand-in app over ``state``."""
    app = Quart("standins")

    async def authorize(provider: str) -> Response:
        args = request.args
        client_id = CLIENTS[provider][0]
        redirect_uri = args.get("redirect_uri", "")
        if args.get("client_id") != client_id:
            return _oauth_error("invalid_client", "unknown client_id")
        if redirect_uri not in state.redirect_uris:
            return _oauth_error("invalid_request", "redirect_uri is not registered for this application")
        if args.get("response_type") != "code":
            return _oauth_error("unsupported_response_type", "only code")
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            return _oauth_error("invalid_request", "PKCE S256 is required")
        if provider == "google" and not args.get("nonce"):
            return _oauth_error("invalid_request", "nonce is required")
        account = state.accounts.get(provider)
        if account is None:
            return redirect(
                f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': args.get('state', '')})}"
            )
        code = secrets.token_urlsafe(24)
        state.grants[code] = Grant(
            provider, client_id, redirect_uri, args["code_challenge"], args.get("nonce"), account
        )
        return redirect(f"{redirect_uri}?{urlencode({'code': code, 'state': args.get('state', '')})}")

    async def exchange(
        provider: str, client_id: str, client_secret: str
    ) -> tuple[Grant | None, Response | None]:
        form = await request.form
        state.token_requests.append({"provider": provider, **form})
        if state.fail_token_endpoint:
            return None, Response("upstream trouble", status=state.fail_token_endpoint)
        if (client_id, client_secret) != CLIENTS[provider]:
            return None, _oauth_error("invalid_client", "bad client credentials", 401)
        if form.get("grant_type") != "authorization_code":
            return None, _oauth_error("unsupported_grant_type", "only authorization_code")
        grant = state.grants.get(form.get("code", ""))
        if grant is None or grant.provider != provider or grant.client_id != client_id:
            return None, _oauth_error("invalid_grant", "unknown code")
        if grant.used:
            return None, _oauth_error("invalid_grant", "code already used")
        if form.get("redirect_uri") != grant.redirect_uri:
            return None, _oauth_error("invalid_grant", "redirect_uri does not match")
        verifier = form.get("code_verifier", "")
        if not verifier or create_s256_code_challenge(verifier) != grant.code_challenge:
            return None, _oauth_error("invalid_grant", "code_verifier does not match")
        grant.used = True
        return grant, None

    def bearer_account(provider: str) -> dict[str, Any] | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        found = state.access_tokens.get(token)
        return found[1] if found and found[0] == provider else None

    def new_access_token(provider: str, account: dict[str, Any]) -> str:
        token = secrets.token_urlsafe(24)
        state.access_tokens[token] = (provider, account)
        return token

    # Discord ------------------------------------------------------------------

    @app.get("/discord/oauth2/authorize")
    async def discord_authorize() -> Response:
        return await authorize("discord")

    @app.post("/discord/api/oauth2/token")
    async def discord_token() -> Response:
        auth = request.authorization
        client_id, client_secret = (auth.username or "", auth.password or "") if auth else ("", "")
        grant, error = await exchange("discord", client_id, client_secret)
        if error is not None:
            return error
        assert grant is not None
        return jsonify(
            {
                "access_token": new_access_token("discord", grant.user),
                "token_type": "Bearer",
                "expires_in": 604800,
                "refresh_token": secrets.token_urlsafe(24),
                "scope": "identify",
            }
        )

    @app.get("/discord/api/users/@me")
    async def discord_me() -> Response:
        account = bearer_account("discord")
        if account is None:
            return Response(
                '{"message": "401: Unauthorized", "code": 0}', status=401, mimetype="application/json"
            )
        return jsonify(account)

    # GitHub -------------------------------------------------------------------

    @app.get("/github/login/oauth/authorize")
    async def github_authorize() -> Response:
        return await authorize("github")

    @app.post("/github/login/oauth/access_token")
    async def github_token() -> Response:
        form = await request.form
        grant, error = await exchange("github", form.get("client_id", ""), form.get("client_secret", ""))
        if error is not None:
            if error.status_code >= 500:
                return error
            body = await error.get_json()
            # GitHub answers token errors with HTTP 200.
            return jsonify(
                {
                    "error": "bad_verification_code" if body["error"] == "invalid_grant" else body["error"],
                    "error_description": body["error_description"],
                }
            )
        assert grant is not None
        token = new_access_token("github", grant.user)
        if "application/json" not in request.headers.get("Accept", ""):
            return Response(
                urlencode({"access_token": token, "token_type": "bearer", "scope": "read:user"}),
                mimetype="application/x-www-form-urlencoded",
            )
        return jsonify({"access_token": token, "token_type": "bearer", "scope": "read:user"})

    @app.get("/github/api/user")
    async def github_user() -> Response:
        if not request.headers.get("User-Agent"):
            return Response("Request forbidden by administrative rules.", status=403)
        account = bearer_account("github")
        if account is None:
            return Response('{"message": "Bad credentials"}', status=401, mimetype="application/json")
        return jsonify(account)

    # Google -------------------------------------------------------------------

    @app.get("/google/.well-known/openid-configuration")
    async def google_discovery() -> Response:
        base = f"{state.base_url}/google"
        return jsonify(
            {
                "issuer": state.issuer,
                "authorization_endpoint": f"{base}/o/oauth2/v2/auth",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/v1/userinfo",
                "jwks_uri": f"{base}/oauth2/v3/certs",
                "response_types_supported": ["code", "token", "id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "code_challenge_methods_supported": ["plain", "S256"],
            }
        )

    @app.get("/google/oauth2/v3/certs")
    async def google_certs() -> Response:
        key = RSAKey.import_key(state.google_key.public_key())
        return jsonify(
            {"keys": [{**key.as_dict(private=False), "kid": state.google_kid, "use": "sig", "alg": "RS256"}]}
        )

    @app.get("/google/o/oauth2/v2/auth")
    async def google_authorize() -> Response:
        return await authorize("google")

    @app.post("/google/token")
    async def google_token() -> Response:
        form = await request.form
        auth = request.authorization
        if auth and auth.username:
            client_id, client_secret = auth.username, auth.password or ""
        else:
            client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        grant, error = await exchange("google", client_id, client_secret)
        if error is not None:
            return error
        assert grant is not None
        now = int(time.time())
        claims = {
            "iss": state.issuer,
            "azp": client_id,
            "aud": client_id,
            "sub": grant.user["sub"],
            "iat": now,
            "exp": now + 3600,
            "nonce": grant.nonce,
            **{k: v for k, v in grant.user.items() if k != "sub"},
        }
        claims.update(state.id_token_overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        id_token = jwt.encode(
            claims,
            state.id_token_key or state.google_key,
            algorithm="RS256",
            headers={"kid": state.id_token_kid or state.google_kid},
        )
        return jsonify(
            {
                "access_token": new_access_token("google", grant.user),
                "token_type": "Bearer",
                "expires_in": 3599,
                "scope": "openid https://www.googleapis.com/auth/userinfo.profile",
                "id_token": id_token,
            }
        )

    return app


def start(redirect_uris: tuple[str, ...]) -> tuple[StandIns, Callable[[], None]]:
    """Serve the stand-ins on 127.0.0.1 (a random port) in a thread; returns the state and a stop function."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    state = StandIns(base_url=f"http://127.0.0.1:{port}", redirect_uris=redirect_uris)
    app = build_app(state)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = None
    loop = asyncio.new_event_loop()
    shutdown = asyncio.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(app, config, shutdown_trigger=shutdown.wait))  # type: ignore[arg-type]
        loop.close()

    thread = threading.Thread(target=run, name="oauth-standins", daemon=True)
    thread.start()

    def stop() -> None:
        loop.call_soon_threadsafe(shutdown.set)
        thread.join()

    return state, stop
