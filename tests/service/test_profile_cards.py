"""GET /v1/profiles/{id} as anon or a member; an admin XP adjustment shows on the card, not in activity."""

from __future__ import annotations

from uuid import UUID

from quart.typing import TestClientProtocol as Client

from tests.helpers import award, make_public, new_profile
from tests.service.conftest import make_token
from xpbase.db import Database
from xpbase.models.profiles import ProfileCard


def bearer(profile_id: UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=str(profile_id))}"}


async def test_profile_card_as_anon_and_hidden_member_as_themself(client: Client, db: Database) -> None:
    """Anon reads a visible card; hidden is 404 unknown_profile to anon, readable with their token."""
    ana = await new_profile(db, "Ana")
    await make_public(db, ana)
    await award(db, ana, "xp_purchase", "ana-1", amount=300)
    response = await client.get(f"/v1/profiles/{ana}?recent=1")
    assert response.status_code == 200
    card = ProfileCard.model_validate(await response.get_json())
    assert (card.display_name, card.xp, card.rank, len(card.recent_activity)) == ("Ana", 300, 1, 1)
    async with db.as_member(ana) as conn:
        await conn.execute(
            "update public.profiles set leaderboard_visible = false where id = (select auth.uid())"
        )
    hidden = await client.get(f"/v1/profiles/{ana}")
    assert hidden.status_code == 404 and (await hidden.get_json())["error"]["code"] == "unknown_profile"
    own = await client.get(f"/v1/profiles/{ana}", headers=bearer(ana))
    assert own.status_code == 200 and (await own.get_json())["is_self"] is True
    bad = await client.get(f"/v1/profiles/{ana}?recent=99", headers=bearer(ana))
    assert bad.status_code == 400 and (await bad.get_json())["error"]["code"] == "invalid_request"


async def test_profile_visibility_decides_who_gets_the_card(client: Client, db: Database) -> None:
    """members (the default): 404 to anon, 200 to a member; private: 404 to another member, 200 to the
    owner; PATCH /v1/me sets it and GET /v1/me shows it."""
    ana, ben = await new_profile(db, "Ana"), await new_profile(db, "Ben")
    me = await client.get("/v1/me", headers=bearer(ana))
    assert (await me.get_json())["profile_visibility"] == "members"
    assert (await client.get(f"/v1/profiles/{ana}")).status_code == 404
    assert (await client.get(f"/v1/profiles/{ana}", headers=bearer(ben))).status_code == 200
    patched = await client.patch("/v1/me", json={"profile_visibility": "private"}, headers=bearer(ana))
    assert patched.status_code == 200 and (await patched.get_json())["profile_visibility"] == "private"
    hidden = await client.get(f"/v1/profiles/{ana}", headers=bearer(ben))
    assert hidden.status_code == 404 and (await hidden.get_json())["error"]["code"] == "unknown_profile"
    assert (await client.get(f"/v1/profiles/{ana}", headers=bearer(ana))).status_code == 200
    bad = await client.patch("/v1/me", json={"profile_visibility": "friends"}, headers=bearer(ana))
    assert bad.status_code == 400


async def test_xp_adjustment_needs_an_admin(client: Client, db: Database) -> None:
    """A member gets 403 forbidden; after service_role_grant_admin the same token's call credits the XP."""
    admin, target = await new_profile(db, "Admin"), await new_profile(db, "Target")
    await make_public(db, target)
    body = {"amount": 250, "reason": "quick start", "idempotency_key": "qs-1"}
    url = f"/v1/admin/profiles/{target}/xp-adjustments"
    refused = await client.post(url, json=body, headers=bearer(admin))
    assert refused.status_code == 403 and (await refused.get_json())["error"]["code"] == "forbidden"
    await db.rpc("service_role_grant_admin", profile_id=admin)
    done = await client.post(url, json=body, headers=bearer(admin))
    assert done.status_code == 200 and (await done.get_json())["granted"] == 250
    card = await (await client.get(f"/v1/profiles/{target}")).get_json()
    assert card["xp"] == 250 and card["recent_activity"] == []  # a correction is not public activity
