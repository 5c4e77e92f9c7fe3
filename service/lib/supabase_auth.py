"""Supabase Auth mode: verifying access tokens that GoTrue (Supabase Auth, supabase-js) issued.

With ``XPBASE_SUPABASE_AUTH=beside`` the service accepts GoTrue's tokens as
well as its own; with ``only`` GoTrue's alone. A token is GoTrue's when its
``iss`` is ``XPBASE_SUPABASE_AUTH_URL``; it is then verified with the
project's JWT secret (HS256) or the public keys of its JWKS (RS256/ES256, read
at startup from ``XPBASE_SUPABASE_JWKS_URL``): signature, ``exp``, ``aud``
``authenticated``, ``iss``, ``sub`` a uuid and ``role`` ``authenticated``
(the anon and service keys are refused). The claims go to Postgres as they
are, so ``auth.uid()`` is the GoTrue user id, which is the profile id
(supabase/sql/82_supabase_auth.sql makes the profile when GoTrue inserts the
user).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import httpx
import jwt
from quart import Quart

from service.lib.tokens import InvalidAccessToken, SettingsError
from xpbase.settings import Settings

ASYMMETRIC = ("RS256", "ES256")


@dataclass
class GoTrueVerifier:
    """The project's issuer and keys; ``only``: xpbase's own tokens are refused."""

    issuer: str
    audience: str
    only: bool
    secret: str | None = field(default=None, repr=False)
    jwks_url: str | None = None
    keys: dict[str, jwt.PyJWK] = field(default_factory=dict)

    def issued(self, token: str) -> bool:
        """Whether the token claims to come from this project's GoTrue (unverified ``iss``)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        return claims.get("iss") == self.issuer

    async def load_keys(self) -> None:
        """Read the JWKS (when a URL is set); keys without ``kid`` or of other algorithms are skipped."""
        if not self.jwks_url:
            return
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(self.jwks_url)
            response.raise_for_status()
            document = response.json()
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if entry.get("kid") and entry.get("alg") in ASYMMETRIC:
                keys[str(entry["kid"])] = jwt.PyJWK(entry)
        self.keys = keys

    def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of a GoTrue access token; InvalidAccessToken with a short reason otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidAccessToken("malformed token") from exc
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self.secret:
            key = self.secret
        elif algorithm in ASYMMETRIC and str(header.get("kid")) in self.keys:
            key = self.keys[str(header["kid"])]
            if key.algorithm_name != algorithm:
                raise InvalidAccessToken("algorithm not allowed")
        elif algorithm in ASYMMETRIC:
            raise InvalidAccessToken("unknown key id")
        else:
            raise InvalidAccessToken("algorithm not allowed")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "aud", "iss", "role"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidAccessToken("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidAccessToken("wrong audience") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidAccessToken("bad signature") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidAccessToken(f"missing claim: {exc.claim}") from exc
        except jwt.InvalidTokenError as exc:
            raise InvalidAccessToken("invalid token") from exc
        try:
            UUID(str(claims["sub"]))
        except ValueError as exc:
            raise InvalidAccessToken("sub must be a user id") from exc
        if claims["role"] != "authenticated":
            raise InvalidAccessToken("role must be authenticated")
        return claims


def load_verifier(settings: Settings) -> GoTrueVerifier | None:
    """The verifier the settings describe (None when the mode is off). Raises SettingsError when unusable."""
    if settings.supabase_auth == "off":
        return None
    issuer = settings.supabase_auth_url.rstrip("/")
    if not issuer.startswith(("https://", "http://")):
        raise SettingsError(
            "XPBASE_SUPABASE_AUTH_URL must be the project's auth URL (https://<ref>.supabase.co/auth/v1)"
        )
    secret = settings.supabase_jwt_secret.get_secret_value() or None
    jwks_url = settings.supabase_jwks_url or (None if secret else f"{issuer}/.well-known/jwks.json")
    return GoTrueVerifier(
        issuer=issuer,
        audience=settings.jwt_audience,
        only=settings.supabase_auth == "only",
        secret=secret,
        jwks_url=jwks_url,
    )


def install(app: Quart, settings: Settings) -> None:
    """Put the verifier in ``app.config["XPBASE_GOTRUE"]`` and read its JWKS before serving."""
    verifier = load_verifier(settings)
    app.config["XPBASE_GOTRUE"] = verifier
    if verifier is not None and verifier.jwks_url:

        @app.before_serving
        async def read_jwks() -> None:
            await verifier.load_keys()
