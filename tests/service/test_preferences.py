"""GET/PUT /v1/me/preferences and POST /v1/me/devices: the SQL rules over HTTP, as the caller."""

from quart.typing import TestClientProtocol as Client

from tests.helpers import award, new_profile
from tests.service.conftest import make_token
from xpbase.db import Database


async def test_preferences_round_trip(client: Client, db: Database) -> None:
    """GET gives the defaults; PUT changes a kind and quiet hours; GET shows the change."""
    ada = await new_profile(db, "Ada")
    headers = {"Authorization": f"Bearer {make_token(sub=str(ada))}"}
    first = await (await client.get("/v1/me/preferences", headers=headers)).get_json()
    assert first["channels"]["level_up"] == ["in_app", "discord_dm", "push"]
    response = await client.put(
        "/v1/me/preferences",
        headers=headers,
        json={"channels": {"level_up": ["email"]}, "quiet_hours_start": "22:00", "quiet_hours_end": "07:00"},
    )
    assert response.status_code == 200
    again = await (await client.get("/v1/me/preferences", headers=headers)).get_json()
    assert (again["channels"]["level_up"], again["quiet_hours_start"], again["quiet_hours_end"]) == (
        ["email"],
        "22:00",
        "07:00",
    )


async def test_bad_preferences_and_no_token(client: Client, db: Database) -> None:
    """An unknown kind is 400 invalid_argument, an unknown channel 400 from the schema; no token is 401."""
    ada = await new_profile(db, "Ada")
    headers = {"Authorization": f"Bearer {make_token(sub=str(ada))}"}
    unknown = await client.put("/v1/me/preferences", headers=headers, json={"channels": {"nope": ["push"]}})
    assert unknown.status_code == 400
    assert (await unknown.get_json())["error"]["code"] == "invalid_argument"
    channel = await client.put(
        "/v1/me/preferences", headers=headers, json={"channels": {"level_up": ["sms"]}}
    )
    assert channel.status_code == 400
    assert (await client.get("/v1/me/preferences")).status_code == 401


async def test_register_devices(client: Client, db: Database) -> None:
    """An FCM token and a Web Push subscription are registered (201); a Web Push without keys is 400."""
    ada = await new_profile(db, "Ada")
    headers = {"Authorization": f"Bearer {make_token(sub=str(ada))}"}
    fcm = await client.post("/v1/me/devices", headers=headers, json={"platform": "fcm", "token": "tok-1"})
    assert fcm.status_code == 201
    assert (await fcm.get_json())["platform"] == "fcm"
    sub = {
        "platform": "webpush",
        "token": "https://push.example/e/1",
        "p256dh": "B" + "A" * 86,
        "auth": "c" * 22,
    }
    assert (await client.post("/v1/me/devices", headers=headers, json=sub)).status_code == 201
    bare = await client.post(
        "/v1/me/devices", headers=headers, json={"platform": "webpush", "token": "https://push.example/e/2"}
    )
    assert bare.status_code == 400
    async with db.as_member(ada) as conn:
        assert await conn.fetchval("select count(*) from public.push_devices") == 2


async def test_leaderboard_visibility_per_board_over_http(client: Client, db: Database) -> None:
    """PUT leaves the all-time board alone: the public board drops the member, the layer board keeps them."""
    ada = await new_profile(db, "Ada")
    await award(db, ada, "challenge_completed", "lv-1", amount=200)
    headers = {"Authorization": f"Bearer {make_token(sub=str(ada))}"}
    first = await (await client.get("/v1/me/preferences/leaderboards", headers=headers)).get_json()
    assert first == {"visible": True, "hidden_boards": []}
    put = await client.put(
        "/v1/me/preferences/leaderboards", headers=headers, json={"hidden_boards": [{"board": "all_time"}]}
    )
    assert put.status_code == 200
    assert (await put.get_json())["hidden_boards"] == [{"board": "all_time", "scope": ""}]
    all_time = await (await client.get("/v1/leaderboards/all_time")).get_json()
    assert str(ada) not in [item["profile_id"] for item in all_time["items"]]
    layer = await (await client.get("/v1/leaderboards/layer?layer=reality")).get_json()
    assert str(ada) in [item["profile_id"] for item in layer["items"]]
    bad = await client.put(
        "/v1/me/preferences/leaderboards",
        headers=headers,
        json={"hidden_boards": [{"board": "layer", "scope": "x"}]},
    )
    assert bad.status_code == 400 and (await bad.get_json())["error"]["code"] == "invalid_argument"
    assert (await client.get("/v1/me/preferences/leaderboards")).status_code == 401
