"""Email sign-in: a 6-digit code mailed to an address, answered with the same session as OAuth.

The rules live in SQL (supabase/sql/81_email_codes.sql): codes hashed, single
use, ten minutes, five wrong tries, rate limits per address and client IP.
This blueprint normalises the address (xpbase/email_address.py), mails the
code (xpbase/mail.py, template ``sign_in_code``) and turns the answers into
sessions. Every well-formed address gets the same answer, known or not: an
unknown address signs up on first use, so each one is mailed a code. Neither
the address nor the code is ever logged.
"""

from __future__ import annotations

import ipaddress
import logging

from pydantic import BaseModel, Field, StrictBool
from quart import Blueprint, request
from quart_schema import tag_blueprint, validate_request, validate_response

from service.blueprints.oauth import LinkedOut
from service.blueprints.sessions import SessionOut, User, current_settings, session_out
from service.lib.access import current_member, require_trusted_origin, token_keys
from service.lib.api_error import APIError
from service.lib.auth_sessions import issued_session
from service.lib.context import get_rpc
from service.lib.openapi import errors
from service.lib.tokens import new_refresh_token, sha256
from xpbase import mail
from xpbase.email_address import MAX_EMAIL_CHARS, InvalidEmail, normalise_email
from xpbase.models.accounts import EmailCode, EmailCodeChecked, EmailCodeWrong, EmailLinked

blueprint = Blueprint("email_sign_in", __name__)
tag_blueprint(blueprint, ["auth"])
log = logging.getLogger(__name__)


class EmailCodeIn(BaseModel):
    """The address to mail a sign-in code to (normalised: README "Email sign-in")."""

    email: str = Field(min_length=1, max_length=MAX_EMAIL_CHARS)


class EmailCodeSentOut(BaseModel):
    """The same answer for every well-formed address: a code is on its way, valid ``expires_in`` seconds."""

    sent: bool = True
    expires_in: int


class EmailVerifyIn(BaseModel):
    """The address and the 6-digit code mailed to it.

    ``cookie``: deliver the tokens in HttpOnly cookies (needs a trusted
    ``Origin``). ``link``: attach the address to the signed-in caller's profile
    instead of signing in (needs the caller's access token).
    """

    email: str = Field(min_length=1, max_length=MAX_EMAIL_CHARS)
    code: str = Field(min_length=1, max_length=16)
    cookie: StrictBool = False
    link: StrictBool = False


def _client_ip() -> str | None:
    """The client's IP for the per-IP limit (None when the server does not know one, e.g. in tests)."""
    try:
        return str(ipaddress.ip_address(request.remote_addr or ""))
    except ValueError:
        return None


def _address(value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidEmail as exc:
        raise APIError(400, "invalid_email", str(exc)) from exc


@blueprint.post("/v1/auth/otp")
@validate_request(EmailCodeIn)
@validate_response(EmailCodeSentOut, 202)
@errors(400, 429, 503)
async def post_email_code(data: EmailCodeIn) -> tuple[EmailCodeSentOut, int]:
    """Mail a 6-digit sign-in code (202, the same answer whether the address is known or not).

    The code works once, for ``expires_in`` seconds (600 by default), and a
    new one replaces the address's earlier codes. Errors: 400
    ``invalid_email`` (malformed, over 254 characters, line breaks); 429
    ``rate_limited`` (more than 5 codes an hour for the address, or 20 for the
    client IP, by default); 503 ``not_configured`` (no SMTP server) or
    ``mail_unavailable`` (the SMTP server did not answer; ask again).
    """
    settings = current_settings()
    address = _address(data.email)
    if not mail.configured(settings):
        raise APIError(503, "not_configured", "Email sign-in needs an SMTP server (XPBASE_SMTP_HOST).")
    code: EmailCode = await get_rpc().call(
        "service_role_request_email_code", email=address, client_ip=_client_ip()
    )
    message = mail.render(
        "sign_in_code",
        f"Your sign-in code: {code.code}",
        address,
        code=code.code,
        minutes=max(1, code.ttl_seconds // 60),
    )
    try:
        await mail.send(message, settings)
    except mail.MailError as exc:
        # Never log the address or the code; a permanent refusal of one recipient answers as usual,
        # so that the answer does not tell addresses apart.
        log.warning("sign-in code mail not sent (%s)", "permanent" if exc.permanent else "transient")
        if not exc.permanent:
            raise APIError(503, "mail_unavailable", "Email could not be sent just now; try again.") from exc
    return EmailCodeSentOut(expires_in=code.ttl_seconds), 202


@blueprint.post("/v1/auth/otp/verify")
@validate_request(EmailVerifyIn)
@validate_response(SessionOut, 200)
@validate_response(LinkedOut, 201)
@errors(400, 401, 403, 409, 502)
async def post_email_verify(data: EmailVerifyIn) -> tuple[SessionOut, int] | tuple[LinkedOut, int]:
    """Sign in with a mailed code (200, a session as from OAuth) or link the address (201, with ``link``).

    Errors: 400 ``invalid_email``, ``invalid_argument`` (not 6 digits),
    ``invalid_code`` (expired, used, replaced or never sent), ``wrong_code``
    (counted; the message says how many tries are left), ``code_locked``
    (five wrong tries: ask for a new code); 401 ``invalid_token`` (``link``
    without a valid token); 403 ``member_suspended`` (banned),
    ``untrusted_origin``; 409 ``identity_linked_elsewhere`` /
    ``provider_already_linked`` when linking.
    """
    settings = current_settings()
    address = _address(data.email)
    link_profile_id = None
    if data.link:
        claims = await current_member()
        if claims is None:
            raise APIError(401, "invalid_token", "Linking an address needs your access token.")
        link_profile_id = claims["sub"]
    if data.cookie:
        require_trusted_origin()
    refresh_token = new_refresh_token()
    checked: EmailCodeChecked = await get_rpc().call(
        "service_role_verify_email_code",
        email=address,
        code=data.code,
        token_hash=sha256(refresh_token),
        ttl_seconds=settings.refresh_token_ttl_seconds,
        link_profile_id=link_profile_id,
    )
    if isinstance(checked, EmailCodeWrong):
        if checked.status == "locked":
            raise APIError(400, "code_locked", "Too many wrong tries; ask for a new code.")
        raise APIError(400, "wrong_code", f"That code is wrong; {checked.tries_left} tries left.")
    if isinstance(checked, EmailLinked):
        linked = checked.link
        return LinkedOut(
            provider=linked.provider,
            subject=linked.subject,
            display_name=linked.display_name,
            already_linked=linked.already_linked,
            user=User.model_validate(linked.user.model_dump()),
        ), 201
    session = issued_session(token_keys(), checked.session, refresh_token, created=checked.created)
    return session_out(session, cookie_mode=data.cookie), 200
