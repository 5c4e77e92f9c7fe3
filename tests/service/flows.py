"""The browser's part of a sign-in, played against the app's test client and the provider stand-ins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from quart.typing import TestClientProtocol as Client
from quart.wrappers import Response

from tests.service.conftest import REDIRECT_URI
from tests.service.standins import StandIns

DISCORD_ADA = {
    "id": "80351110224678912",
    "username": "ada",
    "global_name": "Ada Lovelace",
    "avatar": "8342729096ea3675442027381ff50dfe",
    "discriminator": "0",
}
GITHUB_GRACE = {
    "login": "grace",
    "id": 1000001,
    "name": "Grace Hopper",
    "avatar_url": "https://avatars.githubusercontent.com/u/1000001?v=4",
    "type": "User",
}
GOOGLE_ALAN = {
    "sub": "110169484474386276334",
    "name": "Alan Turing",
    "picture": "https://lh3.googleusercontent.com/a/alan=s96-c",
    "email": "alan@example.test",
    "email_verified": True,
}


@dataclass
class Consent:
    """Where the provider sent the browser back: ``code`` and ``state`` (or ``error``) on the redirect URI."""

    redirect_uri: str
    params: dict[str, str]

    @property
    def code(self) -> str:
        return self.params["code"]

    @property
    def state(self) -> str:
        return self.params["state"]


async def authorize(
    client: Client,
    provider: str,
    *,
    redirect_uri: str | None = REDIRECT_URI,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Response:
    """``GET /v1/auth/<provider>/authorize`` in JSON mode (plus any other query parameters)."""
    query: dict[str, Any] = {"mode": "json", **params}
    if redirect_uri is not None:
        query["redirect_uri"] = redirect_uri
    return await client.get(f"/v1/auth/{provider}/authorize", query_string=query, headers=headers or {})


async def consent(url: str) -> Consent:
    """Follow the provider's authorize URL (the stand-in consents) and read where it redirects."""
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    return Consent(f"{location.scheme}://{location.netloc}{location.path}", params)


async def start(
    client: Client, oauth: StandIns, provider: str, account: dict[str, Any] | None, **params: Any
) -> Consent:
    """Authorize and consent as ``account`` (None: the member declines); returns the redirect back."""
    if account is not None:
        oauth.login_as(provider, account)
    response = await authorize(client, provider, **params)
    assert response.status_code == 200, await response.get_data(as_text=True)
    return await consent((await response.get_json())["url"])


async def callback(client: Client, provider: str, back: Consent, **params: Any) -> Response:
    """``GET /v1/auth/<provider>/callback`` with what the provider put on the redirect URI."""
    return await client.get(f"/v1/auth/{provider}/callback", query_string={**back.params, **params})


async def sign_in(
    client: Client, oauth: StandIns, provider: str, account: dict[str, Any], **params: Any
) -> dict[str, Any]:
    """A whole sign-in; returns the session body (asserting 200)."""
    back = await start(client, oauth, provider, account, **params)
    response = await callback(client, provider, back)
    assert response.status_code == 200, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body
