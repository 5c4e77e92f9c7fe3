"""Email sign-in over HTTP through a real local SMTP server (aiosmtpd): code mailed, session answered."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from service.lib.tokens import decode_access_token
from tests.delivery_standins import SMTPStandIn
from tests.service.conftest import JWT_SECRET
from xpbase.db import Database


@pytest.fixture
def smtp() -> Iterator[SMTPStandIn]:
    standin = SMTPStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def settings_overrides(smtp: SMTPStandIn) -> dict[str, Any]:
    assert smtp.controller is not None
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.controller.port,
        "smtp_tls": "none",
        "smtp_from": "xpbase <login@xpbase.test>",
    }


def mailed_code(smtp: SMTPStandIn, index: int = -1) -> str:
    """The code in the text body of a delivered message."""
    message = smtp.messages[index]
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    code = re.search(r"\b(\d{6})\b", text)
    assert code is not None and code.group(1) in html
    return code.group(1)


async def test_the_whole_flow_mails_a_code_and_answers_a_session(
    app: Quart, client: Client, smtp: SMTPStandIn, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Request -> SMTP message to the normalised address -> verify -> a session for the profile."""
    caplog.set_level(logging.DEBUG)
    response = await client.post("/v1/auth/otp", json={"email": "Ada.Lovelace@Example.COM"})
    assert response.status_code == 202
    assert await response.get_json() == {"sent": True, "expires_in": 600}
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == "ada.lovelace@example.com" and "login@xpbase.test" in message["From"]
    code = mailed_code(smtp)
    verified = await client.post(
        "/v1/auth/otp/verify", json={"email": "ada.lovelace@EXAMPLE.com", "code": code}
    )
    assert verified.status_code == 200
    session = await verified.get_json()
    assert session["created"] is True and session["user"]["role"] == "member"
    claims = decode_access_token(session["access_token"], app.config["XPBASE_TOKEN_KEYS"])
    assert claims["sub"] == session["user"]["id"] and claims["app_metadata"]["provider"] == "email"
    refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    used = await client.post("/v1/auth/otp/verify", json={"email": "ada.lovelace@example.com", "code": code})
    assert (used.status_code, (await used.get_json())["error"]["code"]) == (400, "invalid_code")
    # Nothing of the address or the code in the logs.
    for record in caplog.records:
        if record.name.startswith("mail.log"):
            continue  # the test's own SMTP server (aiosmtpd) logs the SMTP dialogue
        text = record.getMessage()
        assert code not in text and "lovelace" not in text.lower()
    assert JWT_SECRET not in str(session)


async def test_the_answer_is_the_same_for_known_and_unknown_addresses(
    client: Client, smtp: SMTPStandIn
) -> None:
    first = await client.post("/v1/auth/otp", json={"email": "known@example.com"})
    code = mailed_code(smtp)
    await client.post("/v1/auth/otp/verify", json={"email": "known@example.com", "code": code})
    known = await client.post("/v1/auth/otp", json={"email": "known@example.com"})
    unknown = await client.post("/v1/auth/otp", json={"email": "stranger@example.com"})
    assert first.status_code == known.status_code == unknown.status_code == 202
    assert await known.get_json() == await unknown.get_json()
    assert len(smtp.messages) == 3


async def test_limits_and_wrong_tries_over_http(client: Client, smtp: SMTPStandIn) -> None:
    """Six requests for one address: the 6th is 429. Five wrong codes lock it; then the right one fails."""
    for _ in range(5):
        assert (await client.post("/v1/auth/otp", json={"email": "lim@example.com"})).status_code == 202
    limited = await client.post("/v1/auth/otp", json={"email": "lim@example.com"})
    assert (limited.status_code, (await limited.get_json())["error"]["code"]) == (429, "rate_limited")
    assert len(smtp.messages) == 5
    code = mailed_code(smtp)
    bad = f"{(int(code) + 1) % 1000000:06d}"
    codes = []
    for _ in range(6):
        answer = await client.post("/v1/auth/otp/verify", json={"email": "lim@example.com", "code": bad})
        codes.append((answer.status_code, (await answer.get_json())["error"]["code"]))
    assert codes == [(400, "wrong_code")] * 4 + [(400, "code_locked"), (400, "code_locked")]
    right = await client.post("/v1/auth/otp/verify", json={"email": "lim@example.com", "code": code})
    assert (await right.get_json())["error"]["code"] == "code_locked"


@pytest.mark.parametrize(
    "email",
    ["not-an-address", "a@b\r\nBcc: victim@example.com", "x" * 250 + "@example.com", '"quoted"@example.com'],
)
async def test_malformed_addresses_are_400_and_mail_nothing(
    client: Client, smtp: SMTPStandIn, email: str
) -> None:
    answer = await client.post("/v1/auth/otp", json={"email": email})
    assert answer.status_code == 400
    body = await answer.get_json()
    assert body["error"]["code"] in ("invalid_email", "invalid_request") and email not in str(body)
    assert smtp.messages == []
