"""Verifying the Supabase-compatible access tokens that callers send.

Tokens are JWTs as PostgREST accepts them: HS256 signed with the project's JWT
secret (``XPBASE_JWT_SECRET``), ``aud`` = ``authenticated``, ``exp`` required
and checked (``nbf`` too when present), ``sub`` = the caller's profile id
(uuid), ``role`` = ``authenticated``. Only algorithms on the allow-list are
accepted, so ``alg: none`` and algorithm-confusion tokens are refused. Every
refusal is a 401 with the one error shape and a ``WWW-Authenticate`` header.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from uuid import UUID

import jwt
from quart import current_app, g, request, websocket

from service.errors import APIError
from xpbase.settings import Settings

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ["HS256"]
MIN_SECRET_BYTES = 32
P = ParamSpec("P")
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is present but unusable (the message says which and why)."""


def resolve_jwt_secret(settings: Settings) -> str:
    """The HS256 secret: ``XPBASE_JWT_SECRET``, or a development secret kept in the data dir.

    Raises SettingsError when the configured secret is shorter than 32 bytes.
    When none is configured, a random secret is created once in
    ``<data_dir>/jwt-secret`` (mode 0600) and a warning is logged: fine for a
    local run, never what a deployment sharing tokens with PostgREST wants.
    """
    if settings.jwt_secret:
        if len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise SettingsError(f"XPBASE_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return settings.jwt_secret
    path: Path = settings.data_dir / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    log.warning("XPBASE_JWT_SECRET is not set: using the development secret in %s", path)
    return path.read_text().strip()


def _unauthorized(message: str) -> APIError:
    return APIError(
        401,
        "invalid_token",
        message,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'},
    )


def verify_access_token(token: str, secret: str, audience: str = "authenticated") -> dict[str, Any]:
    """The verified claims of an access token.

    Raises APIError(401, "invalid_token") for a bad signature, an algorithm
    outside the allow-list, an expired or not-yet-valid token, a wrong
    audience, a missing or non-uuid ``sub``, or a role other than
    ``authenticated``.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=ALLOWED_ALGORITHMS,
            audience=audience,
            options={"require": ["exp", "sub", "aud"], "verify_signature": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise _unauthorized("token not yet valid") from exc
    except jwt.InvalidAudienceError as exc:
        raise _unauthorized("wrong audience") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise _unauthorized(f"missing claim: {exc.claim}") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("invalid token") from exc
    try:
        UUID(str(claims["sub"]))
    except ValueError as exc:
        raise _unauthorized("sub must be a profile id") from exc
    if claims.get("role", "authenticated") != "authenticated":
        raise _unauthorized("role must be authenticated")
    claims.setdefault("role", "authenticated")
    return claims


def bearer_token() -> str:
    """The token of the ``Authorization: Bearer`` header; APIError 401 when absent or malformed."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("missing bearer token")
    return token.strip()


def require_member(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Route decorator: verify the bearer token and set ``g.claims`` and ``g.profile_id`` (UUID)."""

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        claims = verify_access_token(
            bearer_token(), current_app.config["XPBASE_JWT_SECRET"], current_app.config["XPBASE_JWT_AUDIENCE"]
        )
        g.claims = claims
        g.profile_id = UUID(claims["sub"])
        return await func(*args, **kwargs)

    return wrapper


def websocket_token() -> str:
    """The access token of a websocket handshake: ``Authorization: Bearer`` or the ``token`` query parameter.

    Browsers cannot set headers on a websocket, so the query parameter is
    accepted too (keep such URLs out of access logs). APIError 401 when neither is present.
    """
    header = websocket.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    token = websocket.args.get("token", "").strip()
    if token:
        return token
    raise _unauthorized("missing bearer token (Authorization header or token query parameter)")


def require_member_websocket(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Websocket decorator: verify the handshake's token before accepting; sets g.claims and g.profile_id.

    A refused handshake is answered with the usual 401 error body instead of
    an upgrade (APIError raised before ``websocket.accept()``).
    """

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        claims = verify_access_token(
            websocket_token(),
            current_app.config["XPBASE_JWT_SECRET"],
            current_app.config["XPBASE_JWT_AUDIENCE"],
        )
        g.claims = claims
        g.profile_id = UUID(claims["sub"])
        return await func(*args, **kwargs)

    return wrapper
