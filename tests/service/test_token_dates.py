"""Access token dates: numeric exp/iat/nbf only, and no lifetime longer than the service issues (issue 18)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from quart import Quart
from quart.testing import WebsocketResponseError
from quart.typing import TestClientProtocol as Client

from service.lib.access import ACCESS_COOKIE
from tests.helpers import new_profile
from tests.service.conftest import make_token
from xpbase.db import Database

HOUR = 3600


def _now() -> int:
    return int(time.time())


# Each of these is validly signed with the service's key: only the dates are wrong.
FORGED: dict[str, Callable[[str], str]] = {
    "exp_numeric_string": lambda sub: make_token(sub=sub, exp=str(_now() + 600)),
    "iat_numeric_string": lambda sub: make_token(sub=sub, iat=str(_now())),
    "nbf_numeric_string": lambda sub: make_token(sub=sub, nbf=str(_now() - 5)),
    "exp_boolean": lambda sub: make_token(sub=sub, exp=True),
    "missing_iat": lambda sub: make_token(sub=sub, iat=None),
    "hundred_year_lifetime": lambda sub: make_token(sub=sub, exp=_now() + 100 * 365 * 24 * HOUR),
    "two_hour_lifetime": lambda sub: make_token(sub=sub, iat=_now() - 60, exp=_now() + 2 * HOUR),
    "iat_in_the_future": lambda sub: make_token(sub=sub, iat=_now() + 2 * HOUR, exp=_now() + 2 * HOUR + 600),
}


async def test_forged_dates_are_refused_on_every_transport(app: Quart, client: Client, db: Database) -> None:
    """Non-numeric or missing dates, over-long lifetimes: 401 in the header, the cookie and on sockets."""
    sub = str(await new_profile(db, "Eve"))
    for kind, forge in FORGED.items():
        token = forge(sub)
        response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, kind
        assert (await response.get_json())["error"]["code"] == "invalid_token"
        cookie_client = app.test_client()
        cookie_client.set_cookie("localhost", ACCESS_COOKIE, token, secure=True, path="/")
        assert (await cookie_client.get("/v1/me")).status_code == 401, kind
        for path in ("/v1/events", "/v1/chat"):
            with pytest.raises(WebsocketResponseError) as info:
                async with app.test_client().websocket(path, query_string={"token": token}) as ws:
                    await ws.receive()
            assert info.value.response.status_code == 401, (kind, path)


async def test_a_token_of_the_issued_lifetime_is_accepted(app: Quart, client: Client, db: Database) -> None:
    """An hour's lifetime (what the service issues) with a little clock skew still works everywhere."""
    sub = str(await new_profile(db, "Ada"))
    token = make_token(sub=sub, iat=_now() - 30, exp=_now() + HOUR)
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    client.set_cookie("localhost", ACCESS_COOKIE, token, secure=True, path="/")
    assert (await client.get("/v1/me")).status_code == 200
    async with app.test_client().websocket("/v1/events", query_string={"token": token}) as ws:
        assert '"ready"' in await ws.receive()
