"""Supabase Auth mode: verifying access tokens that GoTrue (Supabase Auth, supabase-js) issued.

With ``XPBASE_SUPABASE_AUTH=beside`` the service accepts GoTrue's tokens as
well as its own; with ``only`` GoTrue's alone. A token is GoTrue's when its
``iss`` is ``XPBASE_SUPABASE_AUTH_URL``; it is then verified with the
project's JWT secret (HS256) or the public keys of its JWKS (RS256/ES256,
from ``XPBASE_SUPABASE_JWKS_URL``): signature, ``exp``, ``aud``
``authenticated``, ``iss``, ``sub`` a uuid and ``role`` ``authenticated``
(the anon and service keys are refused). The claims go to Postgres as they
are, so ``auth.uid()`` is the GoTrue user id, which is the profile id
(supabase/sql/82_supabase_auth.sql makes the profile when GoTrue inserts the
user).

The JWKS is read before serving and kept by pyjwt's ``PyJWKClient``: it is
read again once it is older than ``XPBASE_SUPABASE_JWKS_MAX_AGE_SECONDS``, and
when a token names a ``kid`` the cached set lacks (a key rotated in at the
project), at most once per ``XPBASE_SUPABASE_JWKS_REFETCH_INTERVAL_SECONDS``
(the interval counts from the last read of any kind), so a stream of tokens
with made-up key ids cannot make the service hammer the project. PyJWKClient
reads with urllib, so every key lookup runs in a worker thread, off the event
loop; its lock makes concurrent lookups wait for one read instead of each
reading.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import jwt
from quart import Quart

from service.lib.tokens import InvalidAccessToken, SettingsError
from xpbase.settings import Settings

ASYMMETRIC = ("RS256", "ES256")
log = logging.getLogger(__name__)


class SigningKeysUnavailable(Exception):
    """The project's JWKS could not be read (network error, HTTP error, not JSON)."""


class ProjectJWKS(jwt.PyJWKClient):
    """PyJWKClient keeping only the entries xpbase accepts: a ``kid`` and an ``alg`` of RS256 or ES256."""

    def fetch_data(self) -> Any:
        document = super().fetch_data()
        entries = document.get("keys", [])
        kept = {
            "keys": [
                entry
                for entry in (entries if isinstance(entries, list) else [])
                if isinstance(entry, dict) and entry.get("kid") and entry.get("alg") in ASYMMETRIC
            ]
        }
        if self.jwk_set_cache is not None:
            # super() cached every entry: keep only these (none usable: nothing cached, no key is known).
            try:
                self.jwk_set_cache.put(kept)
            except jwt.PyJWKSetError:
                self.jwk_set_cache.put(None)
                raise
        return kept


@dataclass
class GoTrueVerifier:
    """The project's issuer and keys; ``only``: xpbase's own tokens are refused."""

    issuer: str
    audience: str
    only: bool
    secret: str | None = field(default=None, repr=False)
    jwks: ProjectJWKS | None = None

    def issued(self, token: str) -> bool:
        """Whether the token claims to come from this project's GoTrue (unverified ``iss``)."""
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False
        return claims.get("iss") == self.issuer

    async def load_keys(self) -> None:
        """Read the JWKS now (when a URL is set); SigningKeysUnavailable when it cannot be read."""
        if self.jwks is None:
            return
        try:
            await asyncio.to_thread(self.jwks.get_jwk_set, True)
        except (jwt.PyJWKClientConnectionError, ValueError) as exc:
            raise SigningKeysUnavailable(f"cannot read the JWKS: {exc}") from exc
        except (jwt.PyJWKClientError, jwt.PyJWKSetError) as exc:
            # A set with no RS256/ES256 key: serve (HS256 may still work); lookups read it again later.
            log.warning("The project's JWKS holds no usable key: %s", exc)

    async def signing_key(self, kid: str) -> jwt.PyJWK | None:
        """The JWKS key with this ``kid`` (None when no set has it), reading the set again as described above.

        SigningKeysUnavailable when the set had to be read and could not be.
        """
        if self.jwks is None:
            return None
        try:
            return await asyncio.to_thread(self.jwks.get_signing_key, kid)
        except (jwt.PyJWKClientConnectionError, ValueError) as exc:
            raise SigningKeysUnavailable(f"cannot read the JWKS: {exc}") from exc
        except (jwt.PyJWKClientError, jwt.PyJWKSetError):
            return None

    async def decode(self, token: str) -> dict[str, Any]:
        """The verified claims of a GoTrue access token; InvalidAccessToken with a short reason otherwise.

        SigningKeysUnavailable when the token is RS256/ES256 and the JWKS could not be read.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise InvalidAccessToken("malformed token") from exc
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self.secret:
            key = self.secret
        elif algorithm in ASYMMETRIC:
            key = await self.signing_key(str(header.get("kid")))
            if key is None:
                raise InvalidAccessToken("unknown key id")
            if key.algorithm_name != algorithm:
                raise InvalidAccessToken("algorithm not allowed")
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
    jwks = None
    if jwks_url:
        try:
            jwks = ProjectJWKS(
                jwks_url,
                lifespan=settings.supabase_jwks_max_age_seconds,
                cooldown_duration=settings.supabase_jwks_refetch_interval_seconds,
                timeout=settings.supabase_jwks_timeout_seconds,
            )
        except jwt.PyJWKClientError as exc:
            raise SettingsError(f"XPBASE_SUPABASE_JWKS_URL: {exc}") from exc
    return GoTrueVerifier(
        issuer=issuer,
        audience=settings.jwt_audience,
        only=settings.supabase_auth == "only",
        secret=secret,
        jwks=jwks,
    )


def install(app: Quart, settings: Settings) -> None:
    """Put the verifier in ``app.config["XPBASE_GOTRUE"]`` and read its JWKS before serving."""
    verifier = load_verifier(settings)
    app.config["XPBASE_GOTRUE"] = verifier
    if verifier is not None and verifier.jwks is not None:

        @app.before_serving
        async def read_jwks() -> None:
            await verifier.load_keys()
