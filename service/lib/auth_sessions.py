"""Sessions: an access token plus a rotating refresh token, and the cookies that can carry them.

A session is a refresh-token family in ``private.auth_sessions``; the SQL
functions of supabase/sql/80_sign_in.sql
decide rotation, reuse detection and revocation under a row lock, and this
module turns their answers (xpbase/models/sign_in.py) into tokens. Access
tokens get ``app_metadata.role`` from ``profiles.role`` as the database returns
it at sign-in and at every refresh. Calls go through the typed client
(``xpbase.rpc.PostgresRPC``), except sign-in's two calls, which share one
transaction and are validated against the same models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from quart.typing import ResponseTypes

from service.lib.access import ACCESS_COOKIE, REFRESH_COOKIE
from service.lib.api_error import APIError
from service.lib.oauth_providers import ProviderIdentity
from service.lib.tokens import (
    MAX_REFRESH_TOKEN_CHARS,
    AccessToken,
    TokenKeys,
    issue_access_token,
    new_refresh_token,
    next_refresh_token,
    sha256,
)
from xpbase.models.sign_in import ProfileSummary, Refresh, RefreshedSession, Session, SignedIn, SignedOut
from xpbase.rpc import PostgresRPC, typed
from xpbase.settings import Settings

REFRESH_COOKIE_PATH = "/v1/auth/"


@dataclass(frozen=True)
class IssuedSession:
    """A session's tokens as handed to the client.

    ``user`` is the profile the tokens are for (its role is the access
    token's app role); ``created`` is True when this sign-in made the profile
    (None for refreshes).
    """

    access: AccessToken
    refresh_token: str
    refresh_expires_at: datetime
    session_id: UUID
    provider: str | None
    user: ProfileSummary
    created: bool | None = None


def _issued(keys: TokenKeys, row: Session, refresh_token: str, created: bool | None = None) -> IssuedSession:
    access = issue_access_token(
        keys,
        profile_id=row.user.id,
        app_role=row.user.role,
        session_id=row.session_id,
        provider=row.provider,
    )
    return IssuedSession(
        access=access,
        refresh_token=refresh_token,
        refresh_expires_at=row.refresh_expires_at,
        session_id=row.session_id,
        provider=row.provider,
        user=row.user,
        created=created,
    )


def issued_session(
    keys: TokenKeys, row: Session, refresh_token: str, created: bool | None = None
) -> IssuedSession:
    """The tokens of a session the database started (``row``) whose first refresh token is ``refresh_token``.

    For sign-ins that start the session inside their own SQL function (email codes, 81_email_codes.sql).
    """
    return _issued(keys, row, refresh_token, created)


async def sign_in(
    rpc: PostgresRPC, keys: TokenKeys, settings: Settings, identity: ProviderIdentity
) -> IssuedSession:
    """Sign an identity in (its profile is made on first sight) and start a session, in one transaction."""
    refresh_token = new_refresh_token()
    async with rpc.database.as_service() as conn:
        signed_in: SignedIn = typed(
            "service_role_sign_in",
            await conn.fetchval(
                "select public.service_role_sign_in($1, $2, $3, $4)",
                identity.provider,
                identity.subject,
                identity.display_name,
                identity.avatar_url,
            ),
        )
        started: Session = typed(
            "service_role_create_session",
            await conn.fetchval(
                "select public.service_role_create_session($1, $2, $3, $4)",
                signed_in.profile_id,
                identity.provider,
                sha256(refresh_token),
                settings.refresh_token_ttl_seconds,
            ),
        )
    return _issued(keys, started, refresh_token, created=signed_in.created)


async def start_session(
    rpc: PostgresRPC, keys: TokenKeys, settings: Settings, profile_id: UUID, provider: str | None = None
) -> IssuedSession:
    """Start a session for an existing profile (DomainError XPPRF when there is none)."""
    refresh_token = new_refresh_token()
    started: Session = await rpc.call(
        "service_role_create_session",
        profile_id=profile_id,
        provider=provider,
        token_hash=sha256(refresh_token),
        ttl_seconds=settings.refresh_token_ttl_seconds,
    )
    return _issued(keys, started, refresh_token)


def _invalid_refresh(message: str, code: str = "invalid_refresh_token") -> APIError:
    return APIError(401, code, message)


async def refresh(rpc: PostgresRPC, keys: TokenKeys, settings: Settings, refresh_token: str) -> IssuedSession:
    """Rotate a refresh token: the new access token and the family's live refresh token.

    Raises APIError 401: ``invalid_refresh_token`` (unknown or malformed),
    ``refresh_token_expired``, ``session_revoked``, or
    ``refresh_token_reused`` (a spent token outside the grace window: the
    whole session has just been revoked).
    """
    if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_CHARS:
        raise _invalid_refresh("That refresh token is not valid; sign in again.")
    successor = next_refresh_token(keys, refresh_token)
    row: Refresh = await rpc.call(
        "service_role_refresh_session",
        token_hash=sha256(refresh_token),
        next_token_hash=sha256(successor),
        ttl_seconds=settings.refresh_token_ttl_seconds,
        grace_seconds=settings.refresh_token_reuse_grace_seconds,
    )
    if not isinstance(row, RefreshedSession):
        raise _invalid_refresh(
            "That refresh token was already used, so its session has been ended; sign in again.",
            "refresh_token_reused",
        )
    return _issued(keys, row, successor)


async def sign_out(
    rpc: PostgresRPC, *, refresh_token: str | None, session_id: UUID | None, scope: Literal["local", "global"]
) -> int:
    """End the session of a refresh token or session id (every session of its profile for scope global).

    Returns how many sessions were revoked (0 for an unknown or already ended one).
    """
    token_hash = (
        sha256(refresh_token) if refresh_token and len(refresh_token) <= MAX_REFRESH_TOKEN_CHARS else None
    )
    if token_hash is None and session_id is None:
        return 0
    row: SignedOut = await rpc.call(
        "service_role_sign_out", token_hash=token_hash, session_id=session_id, scope=scope
    )
    return row.revoked


def _samesite(settings: Settings) -> str:
    return settings.auth_cookie_samesite.capitalize()


def set_session_cookies(response: ResponseTypes, session: IssuedSession, settings: Settings) -> None:
    """Put the tokens in HttpOnly, Secure, SameSite cookies.

    The access token (``__Host-xpbase-access-token``, path /) lives as long as
    the token; the refresh token (``__Secure-xpbase-refresh-token``) is sent
    only to /v1/auth/ and lives until it expires.
    """
    response.set_cookie(
        ACCESS_COOKIE,
        session.access.token,
        max_age=session.access.expires_in,
        path="/",
        secure=True,
        httponly=True,
        samesite=_samesite(settings),
    )
    response.set_cookie(
        REFRESH_COOKIE,
        session.refresh_token,
        max_age=settings.refresh_token_ttl_seconds,
        path=REFRESH_COOKIE_PATH,
        secure=True,
        httponly=True,
        samesite=_samesite(settings),
    )


def clear_session_cookies(response: ResponseTypes, settings: Settings) -> None:
    """Expire both session cookies."""
    response.delete_cookie(ACCESS_COOKIE, path="/", secure=True, httponly=True, samesite=_samesite(settings))
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_COOKIE_PATH, secure=True, httponly=True, samesite=_samesite(settings)
    )
