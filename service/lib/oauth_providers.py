"""OAuth 2.0 sign-in with Discord, GitHub and Google (OpenID Connect), through Authlib's async client.

Every provider runs the authorization-code flow with PKCE (S256); the
blueprint (service/blueprints/auth.py) owns the one-time ``state`` and its
binding to the browser. Endpoints come from the settings (defaults: the real
providers), so tests point them at local stand-ins.

- Discord: ``identify`` scope; token endpoint with HTTP Basic client
  authentication; the user is ``GET /users/@me`` (subject = the snowflake id,
  name = ``global_name`` or ``username``, avatar on cdn.discordapp.com).
- GitHub: ``read:user`` scope; client credentials in the token request body,
  ``Accept: application/json``; the user is ``GET /user`` (subject = the
  numeric id, which survives renames; name = ``name`` or ``login``).
- Google: OpenID Connect from the discovery document (endpoints, issuer,
  JWKS); scopes ``openid profile``; the identity is the ``id_token``, verified
  with Authlib's OIDC claims on joserfc: signature against the published JWKS
  (RS256/ES256 only), ``iss`` = the discovery issuer, ``aud`` = our client id,
  ``exp``, ``iat`` and the ``nonce`` we sent (subject = ``sub``).
"""

from __future__ import annotations

import logging
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from xpbase import __version__
from xpbase.settings import Settings

# Authlib 1.9 announces, on import, a future move of its client to httpx2. Its
# httpx client works and is the one pinned (authlib<2); keep the notice out of
# every start-up's output.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger(__name__)
T = TypeVar("T")
USER_AGENT = f"xpbase/{__version__} (+https://github.com/xpbase)"
HTTP_TIMEOUT_SECONDS = 10.0
DISCOVERY_MAX_AGE_SECONDS = 3600
ID_TOKEN_ALGORITHMS = ("RS256", "ES256")
ID_TOKEN_LEEWAY_SECONDS = 60


async def fetch_json(url: str) -> Any:
    """GET ``url`` without a token (our User-Agent, a 10 s timeout) and decode its JSON.

    Raises httpx.HTTPStatusError for a non-2xx answer, httpx.HTTPError when the
    host cannot be reached, ValueError for a body that is not JSON.
    """
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, headers={"User-Agent": USER_AGENT}) as http:
        response = await http.get(url)
        response.raise_for_status()
        return response.json()


@dataclass(frozen=True)
class ProviderIdentity:
    """Who signed in, per the provider: a stable ``subject``, and a display name and avatar URL if given."""

    provider: str
    subject: str
    display_name: str | None
    avatar_url: str | None


class ProviderError(Exception):
    """The provider refused (``status`` 400, e.g. a spent or foreign code) or could not be reached (502)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Endpoints:
    """Where a provider's authorize page, token endpoint and user API live."""

    authorize: str
    token: str
    userinfo: str | None


class OAuthProvider(ABC):
    """One OAuth provider: builds authorization URLs and turns a code into a ProviderIdentity."""

    name: ClassVar[str]
    scope: ClassVar[str]
    token_endpoint_auth_method: ClassVar[str] = "client_secret_basic"

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self._client_secret = client_secret

    def client(self, redirect_uri: str) -> AsyncOAuth2Client:
        """An Authlib async client for one sign-in (PKCE S256, our User-Agent, a 10 s timeout)."""
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            scope=self.scope,
            redirect_uri=redirect_uri,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT_SECONDS,
            headers={"User-Agent": USER_AGENT},
        )

    @abstractmethod
    async def endpoints(self) -> Endpoints:
        """The provider's authorize, token and user endpoints."""

    def authorize_params(self, nonce: str) -> dict[str, str]:
        """Extra query parameters for the authorize URL."""
        return {}

    async def authorization_url(
        self, *, redirect_uri: str, state: str, code_verifier: str, nonce: str
    ) -> str:
        """The provider's authorize URL for this sign-in (with ``state`` and the S256 ``code_challenge``).

        Raises ProviderError(502) when the provider's metadata cannot be loaded.
        """
        endpoints = await self._guarded(self.endpoints())
        async with self.client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                endpoints.authorize, state=state, code_verifier=code_verifier, **self.authorize_params(nonce)
            )
        return str(url)

    async def identify(
        self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str
    ) -> ProviderIdentity:
        """Exchange the authorization code (with the PKCE verifier) and read who signed in.

        Raises ProviderError: 400 ``invalid_grant`` when the provider refuses the
        code or the identity does not verify, 502 ``provider_unavailable`` when it
        cannot be reached or answers with a server error.
        """
        endpoints = await self._guarded(self.endpoints())

        async def run() -> ProviderIdentity:
            async with self.client(redirect_uri) as client:
                token = await client.fetch_token(endpoints.token, code=code, code_verifier=code_verifier)
                return await self.read_identity(client, endpoints, dict(token), nonce)

        return await self._guarded(run())

    @abstractmethod
    async def read_identity(
        self, client: AsyncOAuth2Client, endpoints: Endpoints, token: dict[str, Any], nonce: str
    ) -> ProviderIdentity:
        """Who signed in, from the token answer (``token``) and the provider's user API."""

    async def _guarded(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except OAuthError as exc:
            if exc.error in ("invalid_client", "unauthorized_client"):
                # Our client id or secret is wrong: the operator's problem, not the member's.
                log.error("%s refused our client credentials: %s", self.name, exc.description)
                raise ProviderError(
                    502, "provider_misconfigured", f"{self.name} refused this service's client credentials"
                ) from exc
            raise ProviderError(
                400, "invalid_grant", f"{self.name} refused the sign-in: {exc.error}"
            ) from exc
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            if status >= 500 or status == 429:
                raise ProviderError(
                    502, "provider_unavailable", f"{self.name} answered HTTP {status}"
                ) from exc
            raise ProviderError(
                400, "invalid_grant", f"{self.name} refused the sign-in (HTTP {status})"
            ) from exc
        except (httpx.HTTPError, ValueError) as exc:
            # ValueError: a token endpoint that does not answer JSON (Authlib), or malformed JSON.
            raise ProviderError(
                502, "provider_unavailable", f"{self.name} could not be reached: {exc}"
            ) from exc

    @staticmethod
    async def get_json(client: AsyncOAuth2Client, url: str, **kwargs: Any) -> dict[str, Any]:
        """GET a JSON object with the access token; httpx.HTTPStatusError for a non-2xx answer."""
        response = await client.get(url, **kwargs)
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return data


class FixedEndpointsProvider(OAuthProvider):
    """A provider whose endpoints are set in the settings (Discord, GitHub), with no discovery document."""

    def __init__(
        self, client_id: str, client_secret: str, *, authorize_url: str, token_url: str, userinfo_url: str
    ) -> None:
        super().__init__(client_id, client_secret)
        self._endpoints = Endpoints(authorize_url, token_url, userinfo_url)

    async def endpoints(self) -> Endpoints:
        return self._endpoints

    async def read_user(
        self, client: AsyncOAuth2Client, endpoints: Endpoints, **kwargs: Any
    ) -> dict[str, Any]:
        """The user API's answer with the access token (``kwargs`` go to the GET, e.g. headers)."""
        assert endpoints.userinfo is not None
        return await self.get_json(client, endpoints.userinfo, **kwargs)


class DiscordProvider(FixedEndpointsProvider):
    """Discord OAuth2 (https://discord.com/developers/docs/topics/oauth2)."""

    name = "discord"
    scope = "identify"
    token_endpoint_auth_method = "client_secret_basic"
    cdn = "https://cdn.discordapp.com"

    async def read_identity(
        self, client: AsyncOAuth2Client, endpoints: Endpoints, token: dict[str, Any], nonce: str
    ) -> ProviderIdentity:
        user = await self.read_user(client, endpoints)
        subject = str(user.get("id") or "")
        if not subject.isdigit():
            raise ProviderError(400, "invalid_grant", "discord returned a user without an id")
        avatar = user.get("avatar")
        return ProviderIdentity(
            provider=self.name,
            subject=subject,
            display_name=user.get("global_name") or user.get("username"),
            avatar_url=f"{self.cdn}/avatars/{subject}/{avatar}.png"
            if isinstance(avatar, str) and avatar
            else None,
        )


class GitHubProvider(FixedEndpointsProvider):
    """GitHub OAuth apps (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps)."""

    name = "github"
    scope = "read:user"
    token_endpoint_auth_method = "client_secret_post"

    async def read_identity(
        self, client: AsyncOAuth2Client, endpoints: Endpoints, token: dict[str, Any], nonce: str
    ) -> ProviderIdentity:
        user = await self.read_user(
            client,
            endpoints,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
        )
        if not isinstance(user.get("id"), int):
            raise ProviderError(400, "invalid_grant", "github returned a user without an id")
        return ProviderIdentity(
            provider=self.name,
            subject=str(user["id"]),
            display_name=user.get("name") or user.get("login"),
            avatar_url=user.get("avatar_url"),
        )


class GoogleProvider(OAuthProvider):
    """Google OpenID Connect (https://developers.google.com/identity/openid-connect/openid-connect)."""

    name = "google"
    scope = "openid profile"
    token_endpoint_auth_method = "client_secret_post"

    def __init__(self, client_id: str, client_secret: str, *, discovery_url: str) -> None:
        super().__init__(client_id, client_secret)
        self.discovery_url = discovery_url
        self._metadata: dict[str, Any] | None = None
        self._metadata_loaded_at = 0.0
        self._jwks: dict[str, Any] | None = None

    def authorize_params(self, nonce: str) -> dict[str, str]:
        return {"nonce": nonce}

    async def metadata(self) -> dict[str, Any]:
        """The discovery document, cached for an hour."""
        if self._metadata is None or time.monotonic() - self._metadata_loaded_at > DISCOVERY_MAX_AGE_SECONDS:
            metadata = await fetch_json(self.discovery_url)
            for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(metadata.get(key), str):
                    raise ValueError(f"the discovery document has no {key}")
            self._metadata, self._metadata_loaded_at, self._jwks = metadata, time.monotonic(), None
        return self._metadata

    async def endpoints(self) -> Endpoints:
        metadata = await self.metadata()
        return Endpoints(
            metadata["authorization_endpoint"], metadata["token_endpoint"], metadata.get("userinfo_endpoint")
        )

    async def _key_set(self, *, refresh: bool) -> KeySet:
        if self._jwks is None or refresh:
            metadata = await self.metadata()
            self._jwks = await fetch_json(metadata["jwks_uri"])
        return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]

    async def verify_id_token(self, id_token: str, *, nonce: str, access_token: str | None) -> CodeIDToken:
        """The verified claims of an ID token (as Authlib's parse_id_token, plus an explicit ``aud`` check).

        Raises ProviderError(400) for a bad signature, an unknown key, a wrong
        ``iss``, ``aud`` or ``nonce``, or an expired token.
        """
        metadata = await self.metadata()
        algorithms = [
            a
            for a in metadata.get("id_token_signing_alg_values_supported", ["RS256"])
            if a in ID_TOKEN_ALGORITHMS
        ] or ["RS256"]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                decoded = jose_jwt.decode(id_token, await self._key_set(refresh=False), registry=registry)
            except InvalidKeyIdError:
                # A key Google rotated in since we fetched the set: fetch it once more.
                decoded = jose_jwt.decode(id_token, await self._key_set(refresh=True), registry=registry)
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {
                    "iss": {"essential": True, "value": metadata["issuer"]},
                    "aud": {"essential": True, "value": self.client_id},
                },
                {"nonce": nonce, "client_id": self.client_id, "access_token": access_token},
            )
            claims.validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
        except (JoseError, ValueError) as exc:
            raise ProviderError(400, "invalid_grant", f"google's id_token did not verify: {exc}") from exc
        return claims

    async def read_identity(
        self, client: AsyncOAuth2Client, endpoints: Endpoints, token: dict[str, Any], nonce: str
    ) -> ProviderIdentity:
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError(400, "invalid_grant", "google returned no id_token")
        claims = await self.verify_id_token(id_token, nonce=nonce, access_token=token.get("access_token"))
        return ProviderIdentity(
            provider=self.name,
            subject=str(claims["sub"]),
            display_name=claims.get("name"),
            avatar_url=claims.get("picture"),
        )


def configured_providers(settings: Settings) -> dict[str, OAuthProvider]:
    """The providers whose client id and secret are set, by name (discord, github, google)."""
    providers: dict[str, OAuthProvider] = {}
    if settings.discord_client_id and settings.discord_client_secret.get_secret_value():
        providers["discord"] = DiscordProvider(
            settings.discord_client_id,
            settings.discord_client_secret.get_secret_value(),
            authorize_url=settings.discord_authorize_url,
            token_url=settings.discord_token_url,
            userinfo_url=settings.discord_userinfo_url,
        )
    if settings.github_client_id and settings.github_client_secret.get_secret_value():
        providers["github"] = GitHubProvider(
            settings.github_client_id,
            settings.github_client_secret.get_secret_value(),
            authorize_url=settings.github_authorize_url,
            token_url=settings.github_token_url,
            userinfo_url=settings.github_userinfo_url,
        )
    if settings.google_client_id and settings.google_client_secret.get_secret_value():
        providers["google"] = GoogleProvider(
            settings.google_client_id,
            settings.google_client_secret.get_secret_value(),
            discovery_url=settings.google_discovery_url,
        )
    return providers
