"""Sign-in with Discord, GitHub and Google; token refresh; logout; the JWKS; account-link codes.

The sign-in flow (authorization code with PKCE, the Code of Clans seed's
shape):

1. ``GET /v1/auth/{provider}/authorize?redirect_uri=...`` remembers a one-time
   ``state`` (hashed, server-side, 10 minutes), binds it to the browser with an
   HttpOnly nonce cookie, and redirects to the provider (or answers
   ``{"url": ...}`` for a single-page app). ``redirect_uri`` must be one of
   ``XPBASE_OAUTH_REDIRECT_URIS`` exactly.
2. The provider sends the browser to ``redirect_uri?code=...&state=...``; the
   page there calls ``GET /v1/auth/{provider}/callback?code=...&state=...``
   with credentials (so the nonce cookie comes along).
3. The callback spends the state, exchanges the code with the PKCE verifier,
   reads the identity, makes or finds the profile (``ensure_profile``) and
   answers a session: tokens in the body, or with ``cookie=1`` in HttpOnly
   cookies only.

``?link=1`` on authorize, with a valid access token, attaches the provider's
account to the caller's profile instead of signing in.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal, TypeGuard
from uuid import UUID

from pydantic import BaseModel, Field
from quart import Blueprint, after_this_request, current_app, redirect, request
from quart.typing import ResponseTypes
from quart_schema import tag_blueprint, validate_querystring, validate_response

from service.blueprints.sessions import SessionOut, User, current_settings, session_out
from service.lib.access import client_address, current_member, token_keys
from service.lib.api_error import APIError
from service.lib.auth_sessions import sign_in
from service.lib.context import get_db, get_rpc
from service.lib.oauth_providers import OAuthProvider, ProviderError
from service.lib.openapi import errors
from service.lib.tokens import sha256
from xpbase.models.sign_in import LinkedIdentity, OAuthStateRefused, TakenOAuthState

blueprint = Blueprint("oauth", __name__)
tag_blueprint(blueprint, ["auth"])

BROWSER_COOKIE = "__Secure-xpbase-oauth-browser"
BROWSER_COOKIE_PATH = "/v1/auth/"
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _provider(name: str) -> OAuthProvider:
    providers: dict[str, OAuthProvider] = current_app.config["XPBASE_OAUTH_PROVIDERS"]
    provider = providers.get(name)
    if provider is None:
        raise APIError(404, "unknown_provider", f"Sign-in with {name!r} is not configured here.")
    return provider


def _looks_like_token(value: str | None, length: int = 43) -> TypeGuard[str]:
    return value is not None and len(value) == length and set(value) <= _TOKEN_CHARS


class LinkedOut(BaseModel):
    """A provider account attached to the caller's profile (``already_linked``: it was attached before)."""

    provider: str
    subject: str
    display_name: str | None
    already_linked: bool
    user: User


class AuthorizeQuery(BaseModel):
    """How to start a sign-in.

    ``redirect_uri``: where the provider sends the browser back (one of
    XPBASE_OAUTH_REDIRECT_URIS; optional when only one is configured).
    ``mode=json`` answers the URL instead of redirecting (also when the client
    accepts only JSON). ``link=1`` attaches the account to the signed-in
    caller. ``cookie=1`` delivers tokens in cookies.
    """

    redirect_uri: str | None = Field(default=None, max_length=2000)
    mode: Literal["redirect", "json"] | None = None
    link: bool = False
    cookie: bool = False


class AuthorizeOut(BaseModel):
    """The provider's authorize URL to send the browser to, and until when (UTC) the sign-in may complete."""

    url: str
    expires_at: datetime


class CallbackQuery(BaseModel):
    """What the provider put on the redirect URI (``code`` and ``state``, or ``error``), plus ``cookie=1``."""

    code: str | None = Field(default=None, max_length=2000)
    state: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=200)
    error_description: str | None = Field(default=None, max_length=2000)
    cookie: bool = False


def _wants_json(mode: str | None) -> bool:
    if mode is not None:
        return mode == "json"
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _redirect_uri(requested: str | None) -> str:
    allowed = current_settings().oauth_redirect_uris
    if not allowed:
        raise APIError(503, "sign_in_not_configured", "Set XPBASE_OAUTH_REDIRECT_URIS to allow sign-in.")
    if requested is None:
        if len(allowed) == 1:
            return allowed[0]
        raise APIError(400, "invalid_redirect_uri", "Name redirect_uri: more than one is allowed here.")
    if requested not in allowed:
        raise APIError(400, "invalid_redirect_uri", "redirect_uri is not on this service's allow-list.")
    return requested


@blueprint.get("/v1/auth/<provider>/authorize")
@validate_querystring(AuthorizeQuery)
@validate_response(AuthorizeOut, 200)
@errors(400, 401, 404, 429, 502, 503)
async def get_authorize(provider: str, query_args: AuthorizeQuery) -> AuthorizeOut | ResponseTypes:
    """Start signing in (or linking) with a provider.

    302 to the provider's authorize page, or 200 ``{"url", "expires_at"}`` with
    ``mode=json``. Sets the HttpOnly browser-binding cookie the callback needs.
    Errors: 404 ``unknown_provider``; 400 ``invalid_redirect_uri`` when
    ``redirect_uri`` is not exactly on the allow-list; 401 ``invalid_token``
    for ``link=1`` without a valid access token (header or cookie); 429
    ``rate_limited`` when the client's address (``XPBASE_FORWARDED_FOR_HOPS``)
    already has ``auth_settings.oauth_states_per_client`` sign-ins in flight,
    or everyone together ``oauth_states_total``.
    """
    oauth = _provider(provider)
    settings = current_settings()
    redirect_uri = _redirect_uri(query_args.redirect_uri)
    link_profile_id: UUID | None = None
    if query_args.link:
        claims = await current_member()
        if claims is None:
            raise APIError(
                401,
                "invalid_token",
                "Sign in before linking another account.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        link_profile_id = UUID(claims["sub"])

    state = secrets.token_urlsafe(32)
    code_verifier = secrets.token_urlsafe(64)
    nonce = secrets.token_urlsafe(24)
    browser = request.cookies.get(BROWSER_COOKIE)
    if not _looks_like_token(browser):
        browser = secrets.token_urlsafe(32)
    assert browser is not None

    try:
        url = await oauth.authorization_url(
            redirect_uri=redirect_uri, state=state, code_verifier=code_verifier, nonce=nonce
        )
    except ProviderError as exc:
        raise APIError(exc.status, exc.code, exc.message) from exc
    expires_at: datetime = await get_db().rpc(
        "service_role_create_oauth_state",
        state_hash=sha256(state),
        browser_hash=sha256(browser),
        provider=provider,
        redirect_uri=redirect_uri,
        code_verifier=code_verifier,
        nonce=nonce,
        link_profile_id=link_profile_id,
        cookie_mode=query_args.cookie,
        ttl_seconds=settings.oauth_state_ttl_seconds,
        client_hash=sha256(client_address()),
    )

    @after_this_request
    async def bind_browser(response: ResponseTypes) -> ResponseTypes:
        response.set_cookie(
            BROWSER_COOKIE,
            browser,
            max_age=settings.oauth_state_ttl_seconds,
            path=BROWSER_COOKIE_PATH,
            secure=True,
            httponly=True,
            samesite=settings.auth_cookie_samesite.capitalize(),
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    if _wants_json(query_args.mode):
        return AuthorizeOut(url=url, expires_at=expires_at)
    return redirect(url, 302)


def _invalid_state(message: str) -> APIError:
    return APIError(400, "invalid_state", message)


@blueprint.get("/v1/auth/<provider>/callback")
@validate_querystring(CallbackQuery)
@validate_response(SessionOut, 200)
@validate_response(LinkedOut, 201)
@errors(400, 404, 409, 502)
async def get_callback(
    provider: str, query_args: CallbackQuery
) -> tuple[SessionOut, int] | tuple[LinkedOut, int]:
    """Finish signing in (200, a session) or linking (201, the linked account).

    The ``state`` is spent whatever happens. Errors: 400 ``invalid_state``
    (unknown, tampered, already used, expired, for another provider, or
    issued to another browser), 400 ``access_denied`` (the member said no at
    the provider), 400 ``invalid_grant`` (the provider refused the code, e.g.
    a replayed one), 409 ``identity_linked_elsewhere`` / ``provider_already_linked``
    when linking, 502 ``provider_unavailable``.
    """
    oauth = _provider(provider)
    rpc = get_rpc()
    if not query_args.state:
        raise _invalid_state("The callback has no state.")
    browser = request.cookies.get(BROWSER_COOKIE)
    flow: TakenOAuthState = await rpc.call(
        "service_role_take_oauth_state",
        state_hash=sha256(query_args.state),
        browser_hash=sha256(browser) if _looks_like_token(browser) else None,
        provider=provider,
    )
    if isinstance(flow, OAuthStateRefused):
        raise _invalid_state(
            {
                "unknown": "Unknown or already used state: start signing in again.",
                "other_provider": "This state was issued for another provider.",
                "other_browser": "This sign-in was started in another browser (or its cookie is missing).",
                "expired": "This sign-in took too long: start again.",
            }[flow.status]
        )
    if query_args.error:
        raise APIError(
            400, "access_denied", query_args.error_description or f"{provider} said: {query_args.error}"
        )
    if not query_args.code:
        raise APIError(400, "invalid_request", "The callback has no code.")

    try:
        identity = await oauth.identify(
            code=query_args.code,
            redirect_uri=flow.redirect_uri,
            code_verifier=flow.code_verifier,
            nonce=flow.nonce,
        )
    except ProviderError as exc:
        raise APIError(exc.status, exc.code, exc.message) from exc

    if flow.link_profile_id is not None:
        linked: LinkedIdentity = await rpc.call(
            "service_role_link_identity",
            profile_id=flow.link_profile_id,
            provider=identity.provider,
            subject=identity.subject,
            display_name=identity.display_name,
        )
        return LinkedOut(
            provider=linked.provider,
            subject=linked.subject,
            display_name=linked.display_name,
            already_linked=linked.already_linked,
            user=User.model_validate(linked.user.model_dump()),
        ), 201

    session = await sign_in(rpc, token_keys(), current_settings(), identity)
    return session_out(session, cookie_mode=flow.cookie_mode or query_args.cookie), 200
