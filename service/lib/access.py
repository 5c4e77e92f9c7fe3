"""Who is calling: access tokens from the ``Authorization`` header or an HttpOnly cookie.

Tokens are the Supabase-compatible JWTs of service/tokens.py: one configured
algorithm (HS256, RS256 or ES256) and key id, ``aud`` and ``iss`` checked,
``exp`` required (``nbf`` checked when present), ``sub`` = the caller's profile
id, ``role`` = ``authenticated``. Every refusal is a 401 with the one error
shape and a ``WWW-Authenticate`` header.

Two transports, chosen by the client (the Clash of Code seed's dual mode):
``Authorization: Bearer <jwt>``, or the ``__Host-xpbase-access-token`` cookie
(HttpOnly, Secure, SameSite) that sign-in sets in cookie mode. The header wins
when both are present. A request authenticated by cookie with an unsafe
method (POST, PUT, PATCH, DELETE) must also carry an ``Origin`` that the
service trusts (the origins of ``XPBASE_OAUTH_REDIRECT_URIS``, or its own), so
another site cannot ride on the cookie.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, Literal, ParamSpec, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from quart import current_app, g, request, websocket

from service.lib.api_error import APIError
from service.lib.supabase_auth import SigningKeysUnavailable
from service.lib.tokens import (
    MIN_SECRET_BYTES,
    InvalidAccessToken,
    SettingsError,
    TokenKeys,
    decode_access_token,
    resolve_jwt_secret,
)

__all__ = [
    "ACCESS_COOKIE",
    "MIN_SECRET_BYTES",
    "REFRESH_COOKIE",
    "SettingsError",
    "access_token_from_request",
    "client_address",
    "current_member",
    "optional_member",
    "require_member",
    "require_member_websocket",
    "require_trusted_origin",
    "resolve_jwt_secret",
    "token_keys",
    "verify_access_token",
]

ACCESS_COOKIE = "__Host-xpbase-access-token"
REFRESH_COOKIE = "__Secure-xpbase-refresh-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
P = ParamSpec("P")
T = TypeVar("T")


def token_keys() -> TokenKeys:
    """The app's TokenKeys (inside a request)."""
    keys: TokenKeys = current_app.config["XPBASE_TOKEN_KEYS"]
    return keys


def _unauthorized(message: str) -> APIError:
    return APIError(
        401,
        "invalid_token",
        message,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{message}"'},
    )


async def verify_access_token(token: str, keys: TokenKeys) -> dict[str, Any]:
    """The verified claims of an access token; APIError(401, "invalid_token") when it is refused.

    See service.lib.tokens.decode_access_token for the checks. In Supabase
    Auth mode a token whose ``iss`` is the project's auth URL is verified as
    GoTrue's instead (service/lib/supabase_auth.py); with mode ``only``,
    xpbase's own tokens are refused. APIError(502, "provider_unavailable") when
    a GoTrue token needs the project's JWKS and it cannot be read.
    """
    gotrue = current_app.config.get("XPBASE_GOTRUE")
    try:
        if gotrue is not None and gotrue.issued(token):
            claims: dict[str, Any] = await gotrue.decode(token)
            return claims
        if gotrue is not None and gotrue.only:
            raise InvalidAccessToken("only Supabase Auth tokens are accepted")
        return decode_access_token(token, keys)
    except InvalidAccessToken as exc:
        raise _unauthorized(exc.reason) from exc
    except SigningKeysUnavailable as exc:
        raise APIError(
            502, "provider_unavailable", "Supabase Auth's signing keys cannot be read; try again shortly."
        ) from exc


def trusted_origins() -> set[str]:
    """Origins that may make cookie-authenticated unsafe requests: the redirect URIs' origins, and our own."""
    own = f"{request.scheme}://{request.host}"
    configured: frozenset[str] = current_app.config["XPBASE_TRUSTED_ORIGINS"]
    return {own, *configured}


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as browsers send it in ``Origin``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def require_trusted_origin() -> None:
    """APIError 403 ``untrusted_origin`` unless the request's ``Origin`` is trusted.

    Call it for unsafe requests that a cookie authenticates.
    """
    origin = request.headers.get("Origin")
    if not origin:
        raise APIError(
            403, "untrusted_origin", "Requests authenticated by cookie must send an Origin header."
        )
    if origin not in trusted_origins():
        raise APIError(403, "untrusted_origin", f"Origin {origin} may not use the session cookies.")


def client_address() -> str:
    """The client's address: the connection's peer, or with ``XPBASE_FORWARDED_FOR_HOPS`` = n > 0 the
    address the outermost of n trusted proxies saw (the n-th X-Forwarded-For entry from the right; entries
    further left were written by the client and are not trusted). ``unknown`` when there is none."""
    hops = current_app.config["XPBASE_SETTINGS"].forwarded_for_hops
    if hops:
        forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.remote_addr or "unknown"


def access_token_from_request() -> tuple[str, Literal["header", "cookie"]] | None:
    """The access token and its transport: the ``Authorization: Bearer`` header, else the cookie.

    None when there is neither.

    APIError 401 for an ``Authorization`` header that is not a bearer token.
    """
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("malformed Authorization header")
        return token.strip(), "header"
    cookie = request.cookies.get(ACCESS_COOKIE)
    if cookie:
        return cookie, "cookie"
    return None


async def current_member() -> dict[str, Any] | None:
    """The verified claims of the caller, or None for a caller without a token.

    APIError 401 for a token that is present but refused; APIError 403 for a
    cookie-authenticated unsafe request from an untrusted origin.
    """
    found = access_token_from_request()
    if found is None:
        return None
    token, transport = found
    claims = await verify_access_token(token, token_keys())
    if transport == "cookie" and request.method in UNSAFE_METHODS:
        require_trusted_origin()
    return claims


def require_member(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Route decorator: verify the caller's access token (header or cookie).

    Sets ``g.claims`` and ``g.profile_id`` (UUID).

    401 ``invalid_token`` when there is no token or it is refused.
    """

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        claims = await current_member()
        if claims is None:
            raise _unauthorized("missing bearer token")
        g.claims = claims
        g.profile_id = UUID(claims["sub"])
        return await func(*args, **kwargs)

    return wrapper


def optional_member(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Route decorator for public routes that a member may call signed in (they then see themself if hidden).

    Sets ``g.claims`` and ``g.profile_id`` when a token is present; 401 for a
    token that is present but refused.
    """

    @wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        claims = await current_member()
        if claims is not None:
            g.claims = claims
            g.profile_id = UUID(claims["sub"])
        return await func(*args, **kwargs)

    return wrapper


def websocket_token() -> str:
    """The access token of a websocket handshake: ``Authorization: Bearer`` or the ``token`` query parameter.

    Browsers cannot set headers on a websocket, so the query parameter is
    accepted too (Hypercorn's access log records the path without the query).
    The session cookie is deliberately not accepted here: a websocket handshake
    is not subject to CORS, so a cookie would let any site open a socket as
    the member. APIError 401 when neither is present.
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
        claims = await verify_access_token(websocket_token(), token_keys())
        g.claims = claims
        g.profile_id = UUID(claims["sub"])
        return await func(*args, **kwargs)

    return wrapper
