"""Sessions: refresh, logout and the JWKS that verifies access tokens.

A session is an access token plus a rotating refresh token
(service/lib/auth_sessions.py); the models and the session answer here are
shared with the sign-in callback (service/blueprints/oauth.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, Field, ValidationError
from quart import Blueprint, after_this_request, current_app, request
from quart.typing import ResponseTypes
from quart_schema import tag_blueprint, validate_response

from service.lib.access import REFRESH_COOKIE, current_member, require_trusted_origin, token_keys
from service.lib.api_error import APIError
from service.lib.auth_sessions import (
    IssuedSession,
    clear_session_cookies,
    refresh,
    set_session_cookies,
    sign_out,
)
from service.lib.context import get_rpc
from service.lib.openapi import errors
from xpbase.settings import Settings

blueprint = Blueprint("sessions", __name__)
tag_blueprint(blueprint, ["auth"])

BodyT = TypeVar("BodyT", bound=BaseModel)


def current_settings() -> Settings:
    """The app's Settings (inside a request)."""
    value: Settings = current_app.config["XPBASE_SETTINGS"]
    return value


class User(BaseModel):
    """The signed-in member: profile id, display name, avatar (https URL or null), role (member, admin)."""

    id: UUID
    display_name: str
    avatar_url: str | None
    role: str


class SessionOut(BaseModel):
    """A session (Supabase's shape). In cookie mode the tokens are only in HttpOnly cookies and null here.

    ``expires_at`` is the access token's expiry in Unix seconds (UTC),
    ``expires_in`` its lifetime in seconds; ``created`` is true when this
    sign-in made the profile (null for refreshes).
    """

    token_type: Literal["bearer"] = "bearer"
    access_token: str | None
    refresh_token: str | None
    expires_in: int
    expires_at: int
    refresh_expires_at: datetime
    session_id: UUID
    transport: Literal["body", "cookie"]
    user: User
    created: bool | None = None


class RefreshIn(BaseModel):
    """The refresh token, unless it travels in the refresh cookie."""

    refresh_token: str | None = Field(default=None, max_length=200)


class LogoutIn(BaseModel):
    """Which session to end: the refresh token's (or the cookie's, or the access token's).

    ``scope=global`` ends every session of the member.
    """

    refresh_token: str | None = Field(default=None, max_length=200)
    scope: Literal["local", "global"] = "local"


class JWKS(BaseModel):
    """The public keys that verify access tokens (empty with HS256)."""

    keys: list[dict[str, Any]]


async def optional_body(model: type[BodyT]) -> BodyT:
    """The JSON body as ``model``; an absent body counts as ``{}`` (cookie mode sends none). 400 otherwise."""
    data: Any = {}
    if await request.get_data():
        data = await request.get_json(silent=True)
        if not isinstance(data, dict):
            raise APIError(400, "invalid_request", "The body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise APIError(400, "invalid_request", str(exc)) from exc


def session_out(session: IssuedSession, cookie_mode: bool) -> SessionOut:
    """The session answer; in cookie mode the tokens go into cookies. Never cached (RFC 6749 5.1)."""
    settings = current_settings()

    @after_this_request
    async def deliver(response: ResponseTypes) -> ResponseTypes:
        if cookie_mode:
            set_session_cookies(response, session, settings)
        response.headers["Cache-Control"] = "no-store"
        return response

    return SessionOut(
        access_token=None if cookie_mode else session.access.token,
        refresh_token=None if cookie_mode else session.refresh_token,
        expires_in=session.access.expires_in,
        expires_at=session.access.expires_at,
        refresh_expires_at=session.refresh_expires_at,
        session_id=session.session_id,
        transport="cookie" if cookie_mode else "body",
        user=User.model_validate(session.user.model_dump()),
        created=session.created,
    )


@blueprint.post("/v1/auth/refresh")
@validate_response(SessionOut, 200)
@errors(400, 401, 403)
async def post_refresh() -> SessionOut:
    """Swap a refresh token for a new access token and the next refresh token.

    Body ``{"refresh_token": "..."}`` (tokens answered in the body), or no
    body and the refresh cookie (tokens answered in cookies; the request must
    carry a trusted ``Origin``). Each refresh token works once; presenting the
    immediate parent of the live token again within the grace window
    (``XPBASE_REFRESH_TOKEN_REUSE_GRACE_SECONDS``) answers the live token;
    any other spent token ends the whole session. Errors: 401
    ``invalid_refresh_token``, ``refresh_token_expired``, ``session_revoked``,
    ``refresh_token_reused``; 403 ``untrusted_origin``.
    """
    body = await optional_body(RefreshIn)
    cookie_mode = body.refresh_token is None
    token = body.refresh_token
    if cookie_mode:
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise APIError(401, "invalid_refresh_token", "Send a refresh_token, or the refresh cookie.")
        require_trusted_origin()
    assert token is not None
    session = await refresh(get_rpc(), token_keys(), current_settings(), token)
    return session_out(session, cookie_mode=cookie_mode)


@blueprint.post("/v1/auth/logout")
@errors(400, 401, 403, 502)
async def post_logout() -> tuple[str, int]:
    """End the session (its whole refresh-token family) and clear the session cookies.

    The session is named by ``refresh_token`` in the body, else the refresh
    cookie, else the access token's ``session_id``. ``scope=global`` ends
    every session of the member. 204 also for a session already ended.
    Access tokens already issued stay valid until they expire (at most an
    hour). Errors: 401 when nothing names a session; 403 ``untrusted_origin``
    for cookies without a trusted ``Origin``.
    """
    body = await optional_body(LogoutIn)
    token = body.refresh_token
    session_id: UUID | None = None
    if token is None and (cookie := request.cookies.get(REFRESH_COOKIE)):
        require_trusted_origin()
        token = cookie
    if token is None:
        claims = await current_member()
        if claims is None or not claims.get("session_id"):
            raise APIError(401, "invalid_token", "Send the refresh token, or sign in, to log out.")
        try:
            session_id = UUID(str(claims["session_id"]))
        except ValueError as exc:
            raise APIError(401, "invalid_token", "The access token names no session.") from exc
    await sign_out(get_rpc(), refresh_token=token, session_id=session_id, scope=body.scope)
    settings = current_settings()

    @after_this_request
    async def clear_cookies(response: ResponseTypes) -> ResponseTypes:
        clear_session_cookies(response, settings)
        return response

    return "", 204


@blueprint.get("/.well-known/jwks.json")
@validate_response(JWKS, 200)
async def get_jwks() -> tuple[JWKS, int, dict[str, str]]:
    """The public keys that verify access tokens (RS256/ES256, with ``kid``); an empty set with HS256."""
    return JWKS(**token_keys().jwks()), 200, {"Cache-Control": "public, max-age=600"}
