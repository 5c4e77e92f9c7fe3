"""A member's data over HTTP: GET /v1/me/export, DELETE /v1/me, DELETE /v1/admin/profiles/<id>, and an
admin's import upload POST /v1/admin/imports/<source>."""

from pathlib import Path

from quart.typing import TestClientProtocol as Client

from tests.helpers import new_profile
from tests.service.conftest import make_token
from xpbase.db import Database

FIXTURES = Path(__file__).parent.parent / "fixtures" / "imports"


def _bearer(pid: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=str(pid))}"}


async def test_export_then_erase_yourself(client: Client, db: Database) -> None:
    """The export carries the ledger; after DELETE /v1/me the token's profile is anonymised, XP kept."""
    pid = await new_profile(db, "Ada", subject="42")
    await db.rpc("award_xp", profile_id=pid, activity="challenge_completed", idempotency_key="c1", amount=200)
    export = await client.get("/v1/me/export", headers=_bearer(pid))
    assert export.status_code == 200
    body = await export.get_json()
    assert [r["amount"] for r in body["ledger"]] == [200] and body["identities"][0]["subject"] == "42"
    erased = await client.delete("/v1/me", headers=_bearer(pid))
    assert erased.status_code == 200 and (await erased.get_json())["erased"] is True
    me = await (await client.get("/v1/me", headers=_bearer(pid))).get_json()
    assert (me["display_name"], me["xp"], me["bio"]) == ("Deleted member", 200, "")


async def test_admin_routes_refuse_members_and_serve_admins(client: Client, db: Database) -> None:
    """A member gets 403 on the admin erase and the import upload; an admin imports a MEE6 file."""
    member = await new_profile(db, "Bo")
    admin = await new_profile(db, "Admin")
    await db.rpc("service_role_grant_admin", profile_id=admin)
    refused = await client.delete(f"/v1/admin/profiles/{admin}", headers=_bearer(member))
    assert refused.status_code == 403
    data = (FIXTURES / "mee6.json").read_bytes()
    url = "/v1/admin/imports/mee6?guild_id=700000000000000001&keep=xp"
    assert (await client.post(url, data=data, headers=_bearer(member))).status_code == 403
    done = await client.post(url, data=data, headers=_bearer(admin))
    assert done.status_code == 200
    body = await done.get_json()
    assert (body["counts"], body["xp_granted"], body["bad_row_count"]) == (
        {"imported": 3},
        4675 + 5225 + 99,
        3,
    )
    assert body["bad_rows"][0] == {"where": "players[3]", "reason": body["bad_rows"][0]["reason"]}
    erased = await client.delete(f"/v1/admin/profiles/{member}", headers=_bearer(admin))
    assert erased.status_code == 200 and (await erased.get_json())["erased"] is True


async def test_web_board_filters_by_server(client: Client, db: Database) -> None:
    """GET /v1/leaderboards/all_time?server=ID lists that server's members only."""
    await db.rpc(
        "service_role_discord_see_members", guild_id="5", members=[{"user_id": "51", "display_name": "In"}]
    )
    await new_profile(db, "Out", subject="52")
    body = await (await client.get("/v1/leaderboards/all_time?server=5")).get_json()
    assert [r["display_name"] for r in body["items"]] == ["In"]
    assert (await client.get("/v1/leaderboards/layer?server=5")).status_code == 400
